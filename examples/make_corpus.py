"""Write the shipped bilingual sample corpus (examples/corpus/{en,de}/{train,heldout}.jsonl).

The corpus was written for lmforge: hand-written English and German sentence templates and
phrase banks, combined by a seeded generator into short prose documents about everyday
life, weather, work, food, travel and nature. It is small on purpose (a few hundred KB per
language) and only meant to let a tiny model learn word shapes and simple grammar in both
languages. Re-running this script reproduces the shipped files byte for byte.

    python examples/make_corpus.py
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).parent / "corpus"

EN = {
    "subj": [
        "the old fisherman",
        "the young teacher",
        "my grandmother",
        "the baker",
        "a tired student",
        "the doctor",
        "our neighbour",
        "the little girl",
        "the farmer",
        "a quiet boy",
        "the engineer",
        "the painter",
        "my brother",
        "the mayor",
        "the gardener",
        "a curious cat",
        "the shopkeeper",
        "the nurse",
        "the captain",
        "my aunt",
        "the librarian",
        "the carpenter",
        "a stranger",
        "the cook",
    ],
    "verb_obj": [
        "carries a heavy basket",
        "reads an old letter",
        "paints the wooden fence",
        "bakes fresh bread",
        "repairs the broken bicycle",
        "writes a long story",
        "waters the tomatoes",
        "sells warm apples",
        "opens the green door",
        "cleans the small kitchen",
        "finds a silver key",
        "plants three trees",
        "builds a new shelf",
        "feeds the hungry birds",
        "cooks a thick soup",
        "counts the coins",
        "folds the clean shirts",
        "draws a map of the valley",
        "sings a quiet song",
        "packs a suitcase",
    ],
    "place": [
        "at the harbour",
        "in the garden",
        "in the kitchen",
        "at the market",
        "near the river",
        "in the village",
        "at the station",
        "behind the church",
        "in the library",
        "on the hill",
        "by the lake",
        "in the forest",
        "at the school",
        "in the workshop",
        "on the bridge",
    ],
    "time": [
        "In the morning",
        "Every evening",
        "On Sunday",
        "After lunch",
        "Before sunrise",
        "In winter",
        "Last summer",
        "At noon",
        "On a rainy day",
        "Late at night",
        "In spring",
        "Every Friday",
    ],
    "weather": [
        "the sky is grey and the wind is cold",
        "the sun shines over the roofs",
        "heavy rain falls on the streets",
        "a light snow covers the fields",
        "the air smells of salt",
        "thick fog hides the mountains",
        "the evening is warm and still",
        "a storm moves across the sea",
    ],
    "feeling": ["happy", "tired", "calm", "worried", "proud", "hungry", "surprised", "content", "nervous"],
    "thing": [
        "the bread",
        "the old house",
        "the small boat",
        "the red bicycle",
        "the garden",
        "the letter",
        "the market",
        "the bridge",
        "the soup",
        "the map",
        "the clock",
        "the lamp",
        "the train",
    ],
    "adj": ["old", "warm", "quiet", "bright", "heavy", "simple", "beautiful", "strange", "useful", "small"],
}
EN_TEMPLATES = [
    "{Time}, {subj} {verb_obj} {place}.",
    "{Subj} {verb_obj} {place}, because {weather}.",
    "{Time}, {weather}, and {subj} feels {feeling}.",
    "{Subj} says that {thing} is very {adj}.",
    "Nobody knows why {subj} {verb_obj} {place}.",
    "{Time}, {subj} and {subj2} walk together {place}.",
    "{Thing} is {adj}, but {subj} likes it anyway.",
    "When {weather}, {subj} stays at home and {verb_obj}.",
    "{Subj} often {verb_obj}, and afterwards {subj2} {verb_obj2}.",
    "It is said that {subj} once {verb_obj_past} {place}.",
    "{Subj} looks at {thing} for a long time and smiles.",
    "{Time}, the whole village gathers {place}.",
    "Later, {subj} {verb_obj} while {weather}.",
    "{Subj} asks {subj2} where {thing} is.",
    "There is nothing more {adj} than {thing} {place}.",
]
EN_PAST = {
    "carries": "carried",
    "reads": "read",
    "paints": "painted",
    "bakes": "baked",
    "repairs": "repaired",
    "writes": "wrote",
    "waters": "watered",
    "sells": "sold",
    "opens": "opened",
    "cleans": "cleaned",
    "finds": "found",
    "plants": "planted",
    "builds": "built",
    "feeds": "fed",
    "cooks": "cooked",
    "counts": "counted",
    "folds": "folded",
    "draws": "drew",
    "sings": "sang",
    "packs": "packed",
}

DE = {
    "subj": [
        "der alte Fischer",
        "die junge Lehrerin",
        "meine Großmutter",
        "der Bäcker",
        "ein müder Student",
        "die Ärztin",
        "unser Nachbar",
        "das kleine Mädchen",
        "der Bauer",
        "ein stiller Junge",
        "die Ingenieurin",
        "der Maler",
        "mein Bruder",
        "die Bürgermeisterin",
        "der Gärtner",
        "eine neugierige Katze",
        "der Ladenbesitzer",
        "die Krankenschwester",
        "der Kapitän",
        "meine Tante",
        "die Bibliothekarin",
        "der Zimmermann",
        "ein Fremder",
        "die Köchin",
    ],
    "verb_obj": [
        "trägt einen schweren Korb",
        "liest einen alten Brief",
        "streicht den hölzernen Zaun",
        "backt frisches Brot",
        "repariert das kaputte Fahrrad",
        "schreibt eine lange Geschichte",
        "gießt die Tomaten",
        "verkauft warme Äpfel",
        "öffnet die grüne Tür",
        "putzt die kleine Küche",
        "findet einen silbernen Schlüssel",
        "pflanzt drei Bäume",
        "baut ein neues Regal",
        "füttert die hungrigen Vögel",
        "kocht eine dicke Suppe",
        "zählt die Münzen",
        "faltet die sauberen Hemden",
        "zeichnet eine Karte des Tals",
        "singt ein leises Lied",
        "packt einen Koffer",
    ],
    "place": [
        "am Hafen",
        "im Garten",
        "in der Küche",
        "auf dem Markt",
        "am Fluss",
        "im Dorf",
        "am Bahnhof",
        "hinter der Kirche",
        "in der Bibliothek",
        "auf dem Hügel",
        "am See",
        "im Wald",
        "in der Schule",
        "in der Werkstatt",
        "auf der Brücke",
    ],
    "time": [
        "Am Morgen",
        "Jeden Abend",
        "Am Sonntag",
        "Nach dem Mittagessen",
        "Vor Sonnenaufgang",
        "Im Winter",
        "Letzten Sommer",
        "Am Mittag",
        "An einem Regentag",
        "Spät in der Nacht",
        "Im Frühling",
        "Jeden Freitag",
    ],
    "weather": [
        "der Himmel ist grau und der Wind ist kalt",
        "die Sonne scheint über die Dächer",
        "starker Regen fällt auf die Straßen",
        "leichter Schnee bedeckt die Felder",
        "die Luft riecht nach Salz",
        "dichter Nebel verbirgt die Berge",
        "der Abend ist warm und still",
        "ein Sturm zieht über das Meer",
    ],
    "feeling": ["glücklich", "müde", "ruhig", "besorgt", "stolz", "hungrig", "überrascht", "zufrieden", "nervös"],
    "thing": [
        "das Brot",
        "das alte Haus",
        "das kleine Boot",
        "das rote Fahrrad",
        "der Garten",
        "der Brief",
        "der Markt",
        "die Brücke",
        "die Suppe",
        "die Karte",
        "die Uhr",
        "die Lampe",
        "der Zug",
    ],
    "adj": ["alt", "warm", "ruhig", "hell", "schwer", "einfach", "schön", "seltsam", "nützlich", "klein"],
}
DE_TEMPLATES = [
    "{Time} {verb_first} {subj} {obj_rest} {place}.",
    "{Subj} {verb_obj} {place}, weil {weather_vlast}.",
    "{Time} {weather_v2}, und {subj} ist {feeling}.",
    "{Subj} sagt, dass {thing} sehr {adj} ist.",
    "Niemand weiß, warum {subj} {place} {obj_rest} {verb_last}.",
    "{Time} gehen {subj} und {subj2} zusammen spazieren.",
    "{Thing} ist {adj}, aber {subj} mag es trotzdem.",
    "Wenn {weather_vlast}, bleibt {subj} zu Hause.",
    "{Subj} {verb_obj} oft, und danach {verb_first2} {subj2} {obj_rest2}.",
    "Man erzählt, dass {subj} einmal {place} {obj_rest} {verb_last}.",
    "{Subj} betrachtet {thing_acc} lange und lächelt.",
    "{Time} versammelt sich das ganze Dorf {place}.",
    "Später {verb_first} {subj} {obj_rest}, während {weather_vlast}.",
    "{Subj} fragt {subj2_acc}, wo {thing} ist.",
    "Es gibt nichts Schöneres als {thing_acc} {place}.",
]


def de_weather_vlast(w: str) -> str:
    """Move the finite verb to the end, as German subordinate clauses need."""
    for verb in ("ist", "scheint", "fällt", "bedeckt", "riecht", "verbirgt", "zieht"):
        if f" {verb} " in w:
            head, tail = w.split(f" {verb} ", 1)
            if verb == "ist" and " und " in tail:  # "grau und der Wind ist kalt"
                first, rest = tail.split(" und ", 1)
                return f"{head} {first} ist und {de_weather_vlast(rest)}"
            return f"{head} {tail} {verb}"
    return w


def de_weather_v2(w: str) -> str:
    """After a fronted time phrase the verb comes second: 'Am Morgen scheint die Sonne ...'."""
    for verb in ("ist", "scheint", "fällt", "bedeckt", "riecht", "verbirgt", "zieht"):
        if f" {verb} " in w:
            head, tail = w.split(f" {verb} ", 1)
            return f"{verb} {head} {tail}"
    return w


def de_acc(np_: str) -> str:
    """Accusative of the masculine noun phrases used here ('der Garten' -> 'den Garten')."""
    for a, b in (("der ", "den "), ("ein ", "einen "), ("unser ", "unseren "), ("mein ", "meinen ")):
        if np_.startswith(a) and not np_.endswith(("in", "e")) or np_.startswith(a) and np_.endswith("Garten"):
            adj_fixed = np_.replace("alte ", "alten ").replace("stille ", "stillen ").replace("müder ", "müden ")
            return b + adj_fixed[len(a) :]
    return np_


def cap(s: str) -> str:
    return s[0].upper() + s[1:]


def en_sentence(rng: random.Random) -> str:
    t = rng.choice(EN_TEMPLATES)
    subj, subj2 = rng.sample(EN["subj"], 2)
    vo, vo2 = rng.sample(EN["verb_obj"], 2)
    verb, rest = vo.split(" ", 1)
    fill = {
        "subj": subj,
        "Subj": cap(subj),
        "subj2": subj2,
        "verb_obj": vo,
        "verb_obj2": vo2,
        "verb_obj_past": f"{EN_PAST[verb]} {rest}",
        "place": rng.choice(EN["place"]),
        "Time": rng.choice(EN["time"]),
        "weather": rng.choice(EN["weather"]),
        "feeling": rng.choice(EN["feeling"]),
        "thing": rng.choice(EN["thing"]),
        "adj": rng.choice(EN["adj"]),
    }
    fill["Thing"] = cap(fill["thing"])
    return cap(t.format(**fill))


def de_sentence(rng: random.Random) -> str:
    t = rng.choice(DE_TEMPLATES)
    subj, subj2 = rng.sample(DE["subj"], 2)
    vo, vo2 = rng.sample(DE["verb_obj"], 2)
    verb, rest = vo.split(" ", 1)
    verb2, rest2 = vo2.split(" ", 1)
    weather = rng.choice(DE["weather"])
    thing = rng.choice(DE["thing"])
    fill = {
        "subj": subj,
        "Subj": cap(subj),
        "subj2": subj2,
        "subj2_acc": de_acc(subj2),
        "verb_obj": vo,
        "verb_first": verb,
        "obj_rest": rest,
        "verb_last": verb,
        "verb_first2": verb2,
        "obj_rest2": rest2,
        "place": rng.choice(DE["place"]),
        "Time": rng.choice(DE["time"]),
        "weather_vlast": de_weather_vlast(weather),
        "weather_v2": de_weather_v2(weather),
        "feeling": rng.choice(DE["feeling"]),
        "thing": thing,
        "Thing": cap(thing),
        "thing_acc": de_acc(thing),
        "adj": rng.choice(DE["adj"]),
    }
    return cap(t.format(**fill))


def document(rng: random.Random, sentence) -> str:
    paragraphs = []
    for _ in range(rng.randint(1, 3)):
        paragraphs.append(" ".join(sentence(rng) for _ in range(rng.randint(3, 7))))
    return "\n\n".join(paragraphs)


def write(lang: str, sentence, seed: int, n_train: int, n_heldout: int) -> None:
    rng = random.Random(seed)
    out = OUT / lang
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("heldout", n_heldout)):
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for i in range(n):
                row = {"id": f"{lang}-{split}-{i:05d}", "lang": lang, "text": document(rng, sentence)}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write("en", en_sentence, seed=1, n_train=900, n_heldout=90)
    write("de", de_sentence, seed=2, n_train=900, n_heldout=90)
