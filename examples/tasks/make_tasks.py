"""Write the shipped bilingual sample tasks (examples/tasks/*.jsonl and their specs).

SAMPLES ONLY. These items were written for lmforge, in the style of ARC (grade-school
questions), HellaSwag (pick the sensible continuation of a scene) and PIQA (pick the
workable way to reach a goal), each in English and a parallel German version. A few dozen
items cannot rank real models; they exist so the embedded demo evaluates something in both
languages, and so tests and the lm-eval parity check have fixed, local data. The HellaSwag-
style items reuse the everyday scenes of the sample corpus, which is what a tiny demo model
can learn; the ARC- and PIQA-style items need world knowledge and stay near chance for it.
The right answer is the first choice below; the script shuffles choices with a fixed seed.

    python examples/tasks/make_tasks.py
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).parent

# (question EN, question DE, [right, wrong, wrong, wrong] EN, same DE)
ARC = [
    (
        "Which of these is a source of light?",
        "Was davon ist eine Lichtquelle?",
        ["the sun", "a stone", "a spoon", "a shoe"],
        ["die Sonne", "ein Stein", "ein Löffel", "ein Schuh"],
    ),
    (
        "What do plants need to make their food?",
        "Was brauchen Pflanzen, um ihre Nahrung herzustellen?",
        ["sunlight", "darkness", "plastic", "sand only"],
        ["Sonnenlicht", "Dunkelheit", "Plastik", "nur Sand"],
    ),
    (
        "Water that is cooled below zero degrees Celsius becomes",
        "Wasser, das unter null Grad Celsius abgekühlt wird, wird zu",
        ["ice", "steam", "oil", "salt"],
        ["Eis", "Dampf", "Öl", "Salz"],
    ),
    (
        "Which animal lays eggs?",
        "Welches Tier legt Eier?",
        ["a hen", "a cow", "a horse", "a dog"],
        ["ein Huhn", "eine Kuh", "ein Pferd", "ein Hund"],
    ),
    (
        "Which tool is best for measuring the length of a table?",
        "Welches Werkzeug eignet sich am besten, um die Länge eines Tisches zu messen?",
        ["a tape measure", "a thermometer", "a clock", "a scale"],
        ["ein Maßband", "ein Thermometer", "eine Uhr", "eine Waage"],
    ),
    (
        "What keeps the planets in orbit around the sun?",
        "Was hält die Planeten auf ihrer Bahn um die Sonne?",
        ["gravity", "wind", "magnetism of the moon", "sound"],
        ["die Schwerkraft", "der Wind", "der Magnetismus des Mondes", "der Schall"],
    ),
    (
        "Which of these is a liquid at room temperature?",
        "Was davon ist bei Raumtemperatur flüssig?",
        ["milk", "iron", "wood", "glass"],
        ["Milch", "Eisen", "Holz", "Glas"],
    ),
    (
        "How many legs does a spider have?",
        "Wie viele Beine hat eine Spinne?",
        ["eight", "six", "four", "ten"],
        ["acht", "sechs", "vier", "zehn"],
    ),
    (
        "What gas do people need to breathe in to live?",
        "Welches Gas müssen Menschen einatmen, um zu leben?",
        ["oxygen", "helium", "smoke", "neon"],
        ["Sauerstoff", "Helium", "Rauch", "Neon"],
    ),
    (
        "Which season comes after winter?",
        "Welche Jahreszeit kommt nach dem Winter?",
        ["spring", "autumn", "summer", "winter again"],
        ["der Frühling", "der Herbst", "der Sommer", "wieder der Winter"],
    ),
    (
        "Which material does a magnet attract?",
        "Welches Material zieht ein Magnet an?",
        ["iron", "paper", "wool", "glass"],
        ["Eisen", "Papier", "Wolle", "Glas"],
    ),
    (
        "What causes day and night on Earth?",
        "Was verursacht Tag und Nacht auf der Erde?",
        ["the Earth turning on its axis", "the moon hiding the sun", "clouds moving", "the sun switching off"],
        [
            "die Drehung der Erde um ihre Achse",
            "der Mond, der die Sonne verdeckt",
            "ziehende Wolken",
            "die Sonne, die sich ausschaltet",
        ],
    ),
    (
        "Which part of a plant takes up water from the soil?",
        "Welcher Teil einer Pflanze nimmt Wasser aus dem Boden auf?",
        ["the roots", "the flowers", "the seeds", "the fruit"],
        ["die Wurzeln", "die Blüten", "die Samen", "die Früchte"],
    ),
    (
        "What happens to most metals when they are heated?",
        "Was passiert mit den meisten Metallen, wenn man sie erhitzt?",
        ["they expand", "they shrink to nothing", "they turn into water", "they become wood"],
        ["sie dehnen sich aus", "sie schrumpfen zu nichts", "sie werden zu Wasser", "sie werden zu Holz"],
    ),
    (
        "Which of these animals lives in water and breathes with gills?",
        "Welches dieser Tiere lebt im Wasser und atmet mit Kiemen?",
        ["a fish", "a cat", "an eagle", "a bear"],
        ["ein Fisch", "eine Katze", "ein Adler", "ein Bär"],
    ),
    (
        "Where does rain come from?",
        "Woher kommt der Regen?",
        ["clouds", "mountains", "trees", "the ground"],
        ["aus den Wolken", "aus den Bergen", "aus den Bäumen", "aus dem Boden"],
    ),
    (
        "Which sense do we use to hear music?",
        "Mit welchem Sinn hören wir Musik?",
        ["hearing", "smell", "taste", "touch"],
        ["mit dem Gehör", "mit dem Geruch", "mit dem Geschmack", "mit dem Tastsinn"],
    ),
    (
        "A ball rolls faster down a",
        "Ein Ball rollt schneller einen",
        ["steep hill", "flat floor", "soft carpet", "sandy beach"],
        ["steilen Hügel hinunter", "flachen Boden entlang", "weichen Teppich entlang", "sandigen Strand entlang"],
    ),
    (
        "What is the main job of the heart?",
        "Was ist die Hauptaufgabe des Herzens?",
        ["to pump blood", "to digest food", "to help us see", "to grow hair"],
        ["Blut zu pumpen", "Nahrung zu verdauen", "uns beim Sehen zu helfen", "Haare wachsen zu lassen"],
    ),
    (
        "Which of these is a renewable source of energy?",
        "Was davon ist eine erneuerbare Energiequelle?",
        ["wind", "coal", "oil", "natural gas"],
        ["Wind", "Kohle", "Erdöl", "Erdgas"],
    ),
    (
        "Ice cream left in the sun will",
        "Eis, das in der Sonne liegt, wird",
        ["melt", "freeze harder", "turn into stone", "grow bigger"],
        ["schmelzen", "noch härter gefrieren", "zu Stein werden", "größer werden"],
    ),
    (
        "What do bees collect from flowers?",
        "Was sammeln Bienen von Blüten?",
        ["nectar", "stones", "milk", "feathers"],
        ["Nektar", "Steine", "Milch", "Federn"],
    ),
    (
        "Which object would float on water?",
        "Welcher Gegenstand würde auf dem Wasser schwimmen?",
        ["a piece of wood", "an iron nail", "a stone", "a glass marble"],
        ["ein Stück Holz", "ein Eisennagel", "ein Stein", "eine Glasmurmel"],
    ),
    (
        "What do we call a baby frog?",
        "Wie nennt man einen jungen Frosch?",
        ["a tadpole", "a kitten", "a calf", "a chick"],
        ["eine Kaulquappe", "ein Kätzchen", "ein Kalb", "ein Küken"],
    ),
    (
        "The moon shines at night because it",
        "Der Mond leuchtet nachts, weil er",
        ["reflects light from the sun", "burns like a fire", "is made of lamps", "is hotter than the sun"],
        ["das Licht der Sonne zurückwirft", "wie ein Feuer brennt", "aus Lampen besteht", "heißer als die Sonne ist"],
    ),
    (
        "Which of these is needed to make a fire burn?",
        "Was davon braucht ein Feuer, um zu brennen?",
        ["air", "ice", "sand", "water"],
        ["Luft", "Eis", "Sand", "Wasser"],
    ),
    (
        "Which body part helps a bird to fly?",
        "Welcher Körperteil hilft einem Vogel beim Fliegen?",
        ["its wings", "its beak", "its eyes", "its claws"],
        ["seine Flügel", "sein Schnabel", "seine Augen", "seine Krallen"],
    ),
    (
        "What should you wear on a cold winter day?",
        "Was sollte man an einem kalten Wintertag tragen?",
        ["a warm coat", "a swimsuit", "sandals only", "a paper hat"],
        ["einen warmen Mantel", "einen Badeanzug", "nur Sandalen", "einen Papierhut"],
    ),
    (
        "Sound travels fastest through",
        "Schall breitet sich am schnellsten aus durch",
        ["steel", "air", "a vacuum", "fog"],
        ["Stahl", "Luft", "ein Vakuum", "Nebel"],
    ),
    (
        "Which planet do we live on?",
        "Auf welchem Planeten leben wir?",
        ["Earth", "Mars", "Jupiter", "Venus"],
        ["auf der Erde", "auf dem Mars", "auf dem Jupiter", "auf der Venus"],
    ),
]

# (context EN, context DE, [sensible ending, 3 odd ones] EN, same DE)
HELLASWAG = [
    (
        "In the morning, the baker",
        "Am Morgen",
        [
            "bakes fresh bread at the market.",
            "swims across the clock of the letter.",
            "is very quickly the blue of seven.",
            "sings the bridge into a cold soup of stones.",
        ],
        [
            "backt der Bäcker frisches Brot auf dem Markt.",
            "schwimmt die Uhr über den Brief des Bäckers.",
            "ist der sehr schnell das Blau von sieben.",
            "singt die Brücke in eine kalte Suppe aus Steinen.",
        ],
    ),
    (
        "Every evening, the old fisherman",
        "Jeden Abend",
        [
            "carries a heavy basket at the harbour.",
            "reads the weather into a small spoon of rain.",
            "is the because of and the.",
            "builds a green lake on top of the clock.",
        ],
        [
            "trägt der alte Fischer einen schweren Korb am Hafen.",
            "liest das Wetter in einen kleinen Löffel aus Regen.",
            "ist der weil und das die.",
            "baut einen grünen See auf die Uhr.",
        ],
    ),
    (
        "When heavy rain falls on the streets, my grandmother",
        "Wenn schwerer Regen auf die Straßen fällt,",
        [
            "stays at home and cooks a thick soup.",
            "paints the rain with a silver train.",
            "the very old is quickly.",
            "plants three bridges in the sky.",
        ],
        [
            "bleibt meine Großmutter zu Hause und kocht eine dicke Suppe.",
            "malt meine Großmutter den Regen mit einem silbernen Zug.",
            "die sehr alte ist schnell.",
            "pflanzt meine Großmutter drei Brücken in den Himmel.",
        ],
    ),
    (
        "The young teacher looks at the old house for a long time",
        "Die junge Lehrerin betrachtet das alte Haus lange",
        ["and smiles.", "and the of river.", "because seven bread is.", "while the soup opens the door of the moon."],
        ["und lächelt.", "und der von Fluss.", "weil sieben Brot ist.", "während die Suppe die Tür des Mondes öffnet."],
    ),
    (
        "On Sunday, the whole village",
        "Am Sonntag",
        [
            "gathers at the market.",
            "gathers the market at the the.",
            "is hungry clock green.",
            "folds the river into three shirts.",
        ],
        [
            "versammelt sich das ganze Dorf auf dem Markt.",
            "versammelt der Markt das am am.",
            "ist hungrig Uhr grün.",
            "faltet das Dorf den Fluss in drei Hemden.",
        ],
    ),
    (
        "The gardener waters the tomatoes in the garden,",
        "Der Gärtner gießt die Tomaten im Garten,",
        [
            "because the sun shines over the roofs.",
            "because the roofs eat the quiet bicycle.",
            "and the and the and.",
            "although seven is the colour of soup.",
        ],
        [
            "weil die Sonne über den Dächern scheint.",
            "weil die Dächer das leise Fahrrad essen.",
            "und der und die und.",
            "obwohl sieben die Farbe der Suppe ist.",
        ],
    ),
    (
        "Late at night, a tired student",
        "Spät in der Nacht",
        [
            "writes a long story in the library.",
            "writes the library into a long bread.",
            "student tired a night late.",
            "drinks the mountains with a fork.",
        ],
        [
            "schreibt ein müder Student eine lange Geschichte in der Bibliothek.",
            "schreibt die Bibliothek in ein langes Brot.",
            "Student müde ein Nacht spät.",
            "trinkt ein müder Student die Berge mit einer Gabel.",
        ],
    ),
    (
        "The doctor asks the nurse",
        "Die Ärztin fragt die Krankenschwester,",
        [
            "where the letter is.",
            "where is letter the where.",
            "the green door of a sleeping fish.",
            "to bake the hill on Friday.",
        ],
        [
            "wo der Brief ist.",
            "wo ist Brief der wo.",
            "die grüne Tür eines schlafenden Fisches.",
            "den Hügel am Freitag zu backen.",
        ],
    ),
    (
        "In winter, a light snow covers the fields, and the farmer",
        "Im Winter bedeckt leichter Schnee die Felder, und der Bauer",
        ["feels calm.", "feels the of.", "covers the winter with seven spoons of light.", "is bread and and."],
        [
            "fühlt sich ruhig.",
            "fühlt sich das von.",
            "bedeckt den Winter mit sieben Löffeln Licht.",
            "ist Brot und und.",
        ],
    ),
    (
        "The carpenter builds a new shelf in the workshop,",
        "Der Zimmermann baut ein neues Regal in der Werkstatt,",
        [
            "while a storm moves across the sea.",
            "while the shelf builds the sea of carpenters.",
            "shelf new a the in.",
            "because the moon is made of warm apples.",
        ],
        [
            "während ein Sturm über das Meer zieht.",
            "während das Regal das Meer der Zimmerleute baut.",
            "Regal neues ein das in.",
            "weil der Mond aus warmen Äpfeln besteht.",
        ],
    ),
    (
        "After lunch, my brother and the painter",
        "Nach dem Mittagessen",
        [
            "walk together by the lake.",
            "walk the lake together by.",
            "are the of the lunch.",
            "paint the lunch with a broken song.",
        ],
        [
            "gehen mein Bruder und der Maler zusammen am See spazieren.",
            "gehen den See zusammen am.",
            "sind das von dem Mittagessen.",
            "malen das Mittagessen mit einem kaputten Lied.",
        ],
    ),
    (
        "The shopkeeper says that the bread",
        "Der Ladenbesitzer sagt, dass das Brot",
        ["is very warm.", "is very the.", "says the shopkeeper to a quiet river of coins.", "warm very is bread."],
        [
            "sehr warm ist.",
            "sehr das ist.",
            "dem Ladenbesitzer einen stillen Fluss aus Münzen sagt.",
            "warm sehr ist Brot.",
        ],
    ),
    (
        "Before sunrise, the captain",
        "Vor Sonnenaufgang",
        [
            "packs a suitcase at the station.",
            "packs the station into a sunrise of shoes.",
            "captain the before the.",
            "is the colour of Tuesday.",
        ],
        [
            "packt der Kapitän einen Koffer am Bahnhof.",
            "packt der Bahnhof den Sonnenaufgang in Schuhe.",
            "Kapitän der vor dem.",
            "ist der Kapitän die Farbe des Dienstags.",
        ],
    ),
    (
        "A curious cat finds a silver key",
        "Eine neugierige Katze findet einen silbernen Schlüssel",
        [
            "behind the church.",
            "behind the the church of.",
            "and the key eats the curious sky.",
            "seven quickly because.",
        ],
        [
            "hinter der Kirche.",
            "hinter der der Kirche von.",
            "und der Schlüssel isst den neugierigen Himmel.",
            "sieben schnell weil.",
        ],
    ),
    (
        "Nobody knows why the mayor",
        "Niemand weiß, warum die Bürgermeisterin",
        [
            "counts the coins on the bridge.",
            "counts the bridge on the coins of why.",
            "knows nobody the mayor.",
            "is a quiet song of heavy clocks.",
        ],
        [
            "auf der Brücke die Münzen zählt.",
            "die Brücke auf den Münzen des Warums zählt.",
            "weiß niemand die Bürgermeisterin.",
            "ein leises Lied aus schweren Uhren ist.",
        ],
    ),
    (
        "Last summer, the little girl",
        "Letzten Sommer",
        [
            "feeds the hungry birds near the river.",
            "feeds the river to the hungry summer.",
            "girl little the last.",
            "is a bicycle of seven lamps.",
        ],
        [
            "füttert das kleine Mädchen die hungrigen Vögel am Fluss.",
            "füttert der Fluss den hungrigen Sommer.",
            "Mädchen kleine das letzten.",
            "ist das kleine Mädchen ein Fahrrad aus sieben Lampen.",
        ],
    ),
    (
        "The librarian reads an old letter in the library,",
        "Die Bibliothekarin liest einen alten Brief in der Bibliothek,",
        [
            "and afterwards the cook cleans the small kitchen.",
            "and afterwards the letter reads the cook.",
            "the the of in library.",
            "because the kitchen is a river of trains.",
        ],
        [
            "und danach putzt die Köchin die kleine Küche.",
            "und danach liest der Brief die Köchin.",
            "die die von in Bibliothek.",
            "weil die Küche ein Fluss aus Zügen ist.",
        ],
    ),
    (
        "On a rainy day, the engineer",
        "An einem Regentag",
        [
            "repairs the broken bicycle in the workshop.",
            "repairs the rainy day with a broken song.",
            "engineer the a rainy on.",
            "is the and of the workshop.",
        ],
        [
            "repariert die Ingenieurin das kaputte Fahrrad in der Werkstatt.",
            "repariert den Regentag mit einem kaputten Lied.",
            "Ingenieurin die ein Regentag an.",
            "ist das und von der Werkstatt.",
        ],
    ),
    (
        "There is nothing more beautiful than the small boat",
        "Es gibt nichts Schöneres als das kleine Boot",
        [
            "at the harbour.",
            "at the the harbour of.",
            "than the boat beautiful nothing.",
            "eating the heavy mountains.",
        ],
        ["am Hafen.", "am am Hafen von.", "als das Boot schön nichts.", "das die schweren Berge isst."],
    ),
    (
        "At noon, our neighbour sells warm apples",
        "Am Mittag verkauft unser Nachbar warme Äpfel",
        ["at the market.", "at the the of.", "to the clock of a green winter.", "neighbour our noon at."],
        ["auf dem Markt.", "auf dem dem von.", "an die Uhr eines grünen Winters.", "Nachbar unser Mittag am."],
    ),
    (
        "In spring, the farmer plants three trees",
        "Im Frühling pflanzt der Bauer drei Bäume",
        ["on the hill.", "on the the hill the.", "into the song of a quiet spoon.", "trees three farmer spring."],
        ["auf dem Hügel.", "auf dem dem Hügel den.", "in das Lied eines leisen Löffels.", "Bäume drei Bauer Frühling."],
    ),
    (
        "The cook cooks a thick soup, and the stranger",
        "Die Köchin kocht eine dicke Suppe, und der Fremde",
        ["feels hungry.", "feels the of.", "cooks the cook into a thick river of doors.", "hungry stranger the and."],
        [
            "fühlt sich hungrig.",
            "fühlt sich das von.",
            "kocht die Köchin in einen dicken Fluss aus Türen.",
            "hungrig Fremde der und.",
        ],
    ),
    (
        "Every Friday, my aunt",
        "Jeden Freitag",
        [
            "opens the green door of the library.",
            "opens Friday with the green aunt.",
            "aunt my Friday every.",
            "is a heavy song of the and.",
        ],
        [
            "öffnet meine Tante die grüne Tür der Bibliothek.",
            "öffnet den Freitag mit der grünen Tante.",
            "Tante meine Freitag jeden.",
            "ist ein schweres Lied aus und.",
        ],
    ),
    (
        "When thick fog hides the mountains, the quiet boy",
        "Wenn dichter Nebel die Berge verbirgt,",
        [
            "stays at home and draws a map of the valley.",
            "stays the map and draws the fog of home.",
            "boy quiet the mountains.",
            "is the valley of seven soups.",
        ],
        [
            "bleibt der stille Junge zu Hause und zeichnet eine Karte des Tals.",
            "bleibt die Karte und zeichnet den Nebel des Hauses.",
            "Junge stille der Berge.",
            "ist das Tal aus sieben Suppen.",
        ],
    ),
    (
        "The nurse folds the clean shirts",
        "Die Krankenschwester faltet die sauberen Hemden",
        ["in the village.", "in the the village of.", "into the shirts of a clean moon.", "shirts clean the folds."],
        ["im Dorf.", "im im Dorf von.", "in die Hemden eines sauberen Mondes.", "Hemden sauberen die faltet."],
    ),
    (
        "It is said that the old fisherman once",
        "Man sagt, dass der alte Fischer einmal",
        [
            "found a silver key near the river.",
            "found the river near a silver said.",
            "fisherman old the once said.",
            "was a lamp of heavy Sundays.",
        ],
        [
            "am Fluss einen silbernen Schlüssel gefunden hat.",
            "den Fluss bei einem silbernen gesagt hat.",
            "Fischer alte der einmal sagt.",
            "eine Lampe aus schweren Sonntagen war.",
        ],
    ),
    (
        "The evening is warm and still, and the painter",
        "Der Abend ist warm und still, und der Maler",
        [
            "feels content.",
            "feels the and.",
            "paints the evening into a cold bicycle of stones.",
            "still and warm painter.",
        ],
        [
            "ist zufrieden.",
            "ist das und.",
            "malt den Abend in ein kaltes Fahrrad aus Steinen.",
            "still und warm Maler.",
        ],
    ),
    (
        "The mayor says that the bridge",
        "Die Bürgermeisterin sagt, dass die Brücke",
        ["is very old.", "is very the of.", "says the mayor to the quiet soup of trains.", "old very bridge the."],
        [
            "sehr alt ist.",
            "sehr die von ist.",
            "der Bürgermeisterin die leise Suppe der Züge sagt.",
            "alt sehr Brücke die.",
        ],
    ),
    (
        "In the morning, the young teacher and the doctor",
        "Am Morgen",
        [
            "walk together at the school.",
            "walk the school together at the the.",
            "are the morning of teacher.",
            "eat the school with a silver song.",
        ],
        [
            "gehen die junge Lehrerin und die Ärztin zusammen in der Schule.",
            "gehen die Schule zusammen in der der.",
            "sind der Morgen von Lehrerin.",
            "essen die Schule mit einem silbernen Lied.",
        ],
    ),
    (
        "The farmer looks at the red bicycle for a long time",
        "Der Bauer betrachtet das rote Fahrrad lange",
        [
            "and smiles.",
            "and the of bicycle.",
            "because the bicycle is a river of seven shoes.",
            "long a time for farmer.",
        ],
        [
            "und lächelt.",
            "und das von Fahrrad.",
            "weil das Fahrrad ein Fluss aus sieben Schuhen ist.",
            "lange ein Zeit für Bauer.",
        ],
    ),
]

# (goal EN, goal DE, [works, does not] EN, same DE)
PIQA = [
    (
        "To keep bread fresh for longer,",
        "Um Brot länger frisch zu halten,",
        ["store it in a closed bag.", "leave it open in the sun."],
        ["bewahre es in einem geschlossenen Beutel auf.", "lass es offen in der Sonne liegen."],
    ),
    (
        "To dry wet shoes,",
        "Um nasse Schuhe zu trocknen,",
        ["stuff them with newspaper and leave them in a warm room.", "put them in the freezer overnight."],
        [
            "stopfe sie mit Zeitungspapier aus und stelle sie in einen warmen Raum.",
            "lege sie über Nacht in das Gefrierfach.",
        ],
    ),
    (
        "To open a tight jar lid,",
        "Um einen festsitzenden Glasdeckel zu öffnen,",
        ["run the lid under hot water, then twist it.", "run the lid under cold water, then glue it."],
        [
            "halte den Deckel unter heißes Wasser und drehe ihn dann.",
            "halte den Deckel unter kaltes Wasser und klebe ihn dann fest.",
        ],
    ),
    (
        "To cool a hot drink quickly,",
        "Um ein heißes Getränk schnell abzukühlen,",
        ["add an ice cube.", "put it on the stove."],
        ["gib einen Eiswürfel hinein.", "stelle es auf den Herd."],
    ),
    (
        "To find a small screw that fell on the carpet,",
        "Um eine kleine Schraube zu finden, die auf den Teppich gefallen ist,",
        ["move a magnet slowly over the carpet.", "pour water over the carpet."],
        ["bewege langsam einen Magneten über den Teppich.", "gieße Wasser über den Teppich."],
    ),
    (
        "To stop a cut finger from bleeding,",
        "Um die Blutung an einem geschnittenen Finger zu stoppen,",
        ["press a clean cloth on the cut.", "wash it with salty sea water for an hour."],
        ["drücke ein sauberes Tuch auf die Wunde.", "wasche ihn eine Stunde lang mit salzigem Meerwasser."],
    ),
    (
        "To make a room darker during the day,",
        "Um einen Raum tagsüber dunkler zu machen,",
        ["close the curtains.", "turn on all the lamps."],
        ["ziehe die Vorhänge zu.", "schalte alle Lampen ein."],
    ),
    (
        "To carry soup to a friend,",
        "Um einer Freundin Suppe zu bringen,",
        ["pour it into a jar with a lid.", "pour it into a paper bag."],
        ["fülle sie in ein Glas mit Deckel.", "fülle sie in eine Papiertüte."],
    ),
    (
        "To keep a candle from dripping on the table,",
        "Damit eine Kerze nicht auf den Tisch tropft,",
        ["put it on a plate.", "put it on a napkin."],
        ["stelle sie auf einen Teller.", "stelle sie auf eine Serviette."],
    ),
    (
        "To remember to buy milk,",
        "Um daran zu denken, Milch zu kaufen,",
        ["write it on a shopping list.", "drink all the milk first."],
        ["schreibe sie auf einen Einkaufszettel.", "trinke zuerst die ganze Milch aus."],
    ),
    (
        "To water plants while on holiday,",
        "Um Pflanzen im Urlaub zu gießen,",
        ["ask a neighbour to water them.", "cover them with a thick blanket."],
        ["bitte einen Nachbarn, sie zu gießen.", "decke sie mit einer dicken Decke zu."],
    ),
    (
        "To clean a dirty window,",
        "Um ein schmutziges Fenster zu putzen,",
        ["wipe it with soapy water and a cloth.", "rub it with mud."],
        ["wische es mit Seifenwasser und einem Tuch ab.", "reibe es mit Schlamm ein."],
    ),
    (
        "To wake up early,",
        "Um früh aufzuwachen,",
        ["set an alarm clock.", "stay up all night watching films."],
        ["stelle einen Wecker.", "schaue die ganze Nacht Filme."],
    ),
    (
        "To keep ice cream from melting on the way home,",
        "Damit Eis auf dem Heimweg nicht schmilzt,",
        ["carry it in a cool bag.", "carry it in a warm oven."],
        ["trage es in einer Kühltasche.", "trage es in einem warmen Ofen."],
    ),
    (
        "To hang a picture on the wall,",
        "Um ein Bild an die Wand zu hängen,",
        [
            "hammer a nail into the wall and hang the picture on it.",
            "put butter on the back of the picture and press it on the wall.",
        ],
        [
            "schlage einen Nagel in die Wand und hänge das Bild daran auf.",
            "streiche Butter auf die Rückseite des Bildes und drücke es an die Wand.",
        ],
    ),
    (
        "To see in a dark cellar,",
        "Um in einem dunklen Keller zu sehen,",
        ["take a torch.", "wear sunglasses."],
        ["nimm eine Taschenlampe mit.", "setze eine Sonnenbrille auf."],
    ),
    (
        "To soften hard butter,",
        "Um harte Butter weich zu machen,",
        ["leave it at room temperature for an hour.", "put it in the freezer."],
        ["lass sie eine Stunde bei Raumtemperatur stehen.", "lege sie in das Gefrierfach."],
    ),
    (
        "To stop a door from slamming in the wind,",
        "Damit eine Tür im Wind nicht zuschlägt,",
        ["put a door stop under it.", "open all the windows wider."],
        ["lege einen Türstopper darunter.", "öffne alle Fenster weiter."],
    ),
    (
        "To keep your hands warm outside in winter,",
        "Um die Hände draußen im Winter warm zu halten,",
        ["wear gloves.", "hold snow in them."],
        ["trage Handschuhe.", "halte Schnee darin."],
    ),
    (
        "To cut a sheet of paper in half,",
        "Um ein Blatt Papier in zwei Hälften zu teilen,",
        ["fold it and cut along the fold with scissors.", "soak it in water and wait."],
        ["falte es und schneide mit einer Schere entlang der Falte.", "weiche es in Wasser ein und warte."],
    ),
    (
        "To boil an egg,",
        "Um ein Ei zu kochen,",
        ["put it in boiling water for eight minutes.", "put it in cold water in the fridge for eight minutes."],
        ["lege es acht Minuten in kochendes Wasser.", "lege es acht Minuten in kaltes Wasser im Kühlschrank."],
    ),
    (
        "To get a splinter out of a finger,",
        "Um einen Splitter aus einem Finger zu entfernen,",
        ["pull it out gently with clean tweezers.", "push it deeper with a hammer."],
        ["ziehe ihn vorsichtig mit einer sauberen Pinzette heraus.", "schlage ihn mit einem Hammer tiefer hinein."],
    ),
    (
        "To keep a bicycle from being stolen,",
        "Damit ein Fahrrad nicht gestohlen wird,",
        ["lock it to a post.", "leave the key in the lock."],
        ["schließe es an einem Pfosten an.", "lass den Schlüssel im Schloss stecken."],
    ),
    (
        "To make tea,",
        "Um Tee zu kochen,",
        ["pour hot water over a tea bag.", "pour cold oil over a tea bag."],
        ["gieße heißes Wasser über einen Teebeutel.", "gieße kaltes Öl über einen Teebeutel."],
    ),
    (
        "To keep papers from blowing away outside,",
        "Damit Papiere draußen nicht wegfliegen,",
        ["put a stone on top of them.", "fan them with a book."],
        ["lege einen Stein darauf.", "fächle ihnen mit einem Buch Luft zu."],
    ),
    (
        "To find your way in a strange city,",
        "Um sich in einer fremden Stadt zurechtzufinden,",
        ["use a map.", "close your eyes and walk fast."],
        ["benutze einen Stadtplan.", "schließe die Augen und gehe schnell."],
    ),
    (
        "To stop a squeaking door hinge,",
        "Damit ein Türscharnier nicht mehr quietscht,",
        ["put a drop of oil on the hinge.", "put a drop of water and sugar on the hinge."],
        ["gib einen Tropfen Öl auf das Scharnier.", "gib einen Tropfen Zuckerwasser auf das Scharnier."],
    ),
    (
        "To protect your skin from sunburn,",
        "Um die Haut vor Sonnenbrand zu schützen,",
        ["put on sun cream.", "put on cooking oil."],
        ["trage Sonnencreme auf.", "trage Speiseöl auf."],
    ),
    (
        "To fix a loose button on a shirt,",
        "Um einen losen Knopf an einem Hemd zu befestigen,",
        ["sew it on with a needle and thread.", "tape it on with a plaster."],
        ["nähe ihn mit Nadel und Faden an.", "klebe ihn mit einem Pflaster an."],
    ),
    (
        "To keep milk from going sour quickly,",
        "Damit Milch nicht schnell sauer wird,",
        ["keep it in the fridge.", "keep it next to the heater."],
        ["bewahre sie im Kühlschrank auf.", "bewahre sie neben der Heizung auf."],
    ),
]

SPECS = {
    "arc_sample": ("Question: {{question}}\nAnswer:", "Frage: {{question}}\nAntwort:", "question"),
    "hellaswag_sample": ("{{ctx}}", "{{ctx}}", "ctx"),
    "piqa_sample": ("Question: {{goal}}\nAnswer:", "Frage: {{goal}}\nAntwort:", "goal"),
}


def write(benchmark: str, items: list, lang_index: int, lang: str, rng: random.Random) -> None:
    prompt, field = SPECS[benchmark][lang_index], SPECS[benchmark][2]
    rows = []
    for entry in items:
        text, choices = entry[lang_index], list(entry[2 + lang_index])
        order = list(range(len(choices)))
        rng.shuffle(order)
        rows.append({field: text, "choices": [choices[i] for i in order], "answer": order.index(0)})
    name = f"{benchmark}_{lang}"
    with open(OUT / f"{name}.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    spec = (
        f"# SAMPLE task written for lmforge ({benchmark.split('_')[0]}-style), {lang}; not a benchmark.\n"
        f'name = "{name}"\nbenchmark = "{benchmark}"\nlanguage = "{lang}"\ndata = "{name}.jsonl"\n'
        f'prompt = {json.dumps(prompt, ensure_ascii=False)}\nchoices = "choices"\nanswer = "answer"\n'
        f'metrics = ["acc", "acc_norm", "acc_bytes"]\n'
    )
    (OUT / f"{name}.toml").write_text(spec, encoding="utf-8")


def main() -> None:
    for benchmark, items in (("arc_sample", ARC), ("hellaswag_sample", HELLASWAG), ("piqa_sample", PIQA)):
        for lang_index, lang in enumerate(("en", "de")):
            write(benchmark, items, lang_index, lang, random.Random(f"{benchmark}-{lang}"))


if __name__ == "__main__":
    main()
