"""Write the curation regression set (examples/curation/regression.jsonl): web text as it really
looks, labelled clean or junk, for checking that the `en`/`de` presets keep real articles and drop
junk (tests/test_curate_regression.py).

Clean, in English and German:
- news: one-line articles of 1-3k characters ending in an agency tag such as "(APA, 16.7.2015)",
  with prices, scores, percentages and dates inside;
- reports: number-heavy market, sports, weather and council reports, on one line or several;
- forum posts: a question with greeting and sign-off lines, and replies.
Junk: navigation menus, cookie banners, keyword spam, shop grids of prices, login/404 pages,
link lists and boilerplate repeated down the page.

Every text is assembled from sentences written for lmforge, with names, places and figures
drawn by a seeded generator; re-running the script reproduces the file byte for byte.

    python examples/curation/make_regression.py
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).parent / "regression.jsonl"

CITIES = {
    "en": ["Leeds", "Bristol", "Denver", "Adelaide", "Cork", "Toronto", "Glasgow", "Portland"],
    "de": ["Graz", "Linz", "Kassel", "Bremen", "Freiburg", "Innsbruck", "Leipzig", "Münster"],
}
NAMES = {
    "en": ["Sarah Miller", "James O'Neill", "Priya Shah", "Tom Becker", "Laura Chen", "David Okafor"],
    "de": ["Anna Huber", "Markus Berger", "Sabine Wolf", "Thomas Gruber", "Julia Neumann", "Stefan Koller"],
}
TEAMS = {
    "en": ["Rovers", "United", "Athletic", "City", "Wanderers", "Albion"],
    "de": ["Sturm", "Rapid", "Austria", "Eintracht", "Hertha", "Werder"],
}
COMPANIES = {
    "en": ["Northwind Foods", "Harbor Steel", "Blue Fern Energy", "Castle Mobile"],
    "de": ["Alpenmilch AG", "Donau Stahl", "Nordlicht Energie", "Mobilfunk Ost"],
}
AGENCIES = {
    "en": ["(Reuters)", "(AP)", "(PA, {d}.{m}.{y})", "(Reuters, {d} {month} {y})", "(AFP)"],
    "de": ["(APA, {d}.{m}.{y})", "(dpa)", "(APA)", "(dpa, {d}.{m}.{y})", "(AFP/APA)", "(red, {d}.{m}.{y})"],
}
MONTHS = {
    "en": ["January", "March", "May", "July", "September", "November"],
    "de": ["Jänner", "März", "Mai", "Juli", "September", "November"],
}

NEWS = {
    "en": [
        "The city council of {city} voted on Tuesday to raise bus fares by {pct} percent from {month}.",
        "A single ticket will then cost {price} pounds, up from {price2} pounds, while monthly passes stay the same.",
        "Council leader {name} said the increase was needed to keep night services running after the subsidy ended.",
        "Opposition members argued that the rise would hit shift workers and students hardest.",
        "According to the transport authority, about {num} people use the network on a typical weekday.",
        "The vote passed by {a} to {b}, with two members abstaining.",
        "Local businesses in the centre of {city} have reported falling footfall since the spring.",
        "The last fare increase took effect in {y2} and was followed by a small drop in passenger numbers.",
        "A consultation on new routes to the hospital and the university will open next month.",
        "Residents can send comments by post or fill in a form at the town hall until the end of {month}.",
        "Police in {city} said a {age}-year-old man was arrested on Sunday evening after a car hit a shop window.",
        "Nobody was hurt, but the damage was estimated at around {price} thousand pounds.",
        "{company} reported a quarterly profit of {price} million, which was better than analysts had expected.",
        "Its shares rose {pct} percent in early trading before falling back slightly.",
        "Chief executive {name} told reporters that demand had recovered in the second half of the year.",
        "The company plans to hire {num2} new staff at its plant near {city} over the next two years.",
        "Unions welcomed the announcement but said they would watch closely how the jobs are filled.",
        "The {team} beat the {team2} {score} on Saturday and moved up to third place in the table.",
        "Their captain scored twice in the second half, the second goal coming in the {minute}th minute.",
        "Weather forecasters expect temperatures of up to {temp} degrees in {city} by the weekend.",
        "The national rail operator warned that engineering works will close the line between {city} and {city2} for {days} days.",
        "Replacement buses will run every {minutes} minutes, and journeys may take up to an hour longer.",
        "The museum in {city} will stay open until 9 pm on Thursdays from {month} onwards.",
        "Entry for adults costs {price} pounds, and children under twelve go in free.",
        "A spokesperson said the longer hours were a response to requests from people who work during the day.",
    ],
    "de": [
        "Der Gemeinderat von {city} hat am Dienstag beschlossen, die Tarife der Verkehrsbetriebe ab {month} um {pct} Prozent zu erhöhen.",
        "Ein Einzelfahrschein kostet dann {price} Euro statt bisher {price2} Euro, die Jahreskarte bleibt gleich.",
        "Bürgermeisterin {name} begründete die Erhöhung mit den gestiegenen Energiekosten der letzten Monate.",
        "Die Opposition kritisierte, dass vor allem Pendler und Studierende die Last tragen müssten.",
        "Laut den Verkehrsbetrieben sind an einem normalen Werktag rund {num} Fahrgäste unterwegs.",
        "Der Beschluss fiel mit {a} zu {b} Stimmen, zwei Mandatare enthielten sich.",
        "Die Händler in der Innenstadt von {city} klagen seit dem Frühjahr über weniger Kundschaft.",
        "Die letzte Erhöhung war im Jahr {y2} in Kraft getreten und hatte zu einem leichten Rückgang der Fahrgastzahlen geführt.",
        "Eine Befragung zu neuen Linien zum Krankenhaus und zur Universität soll im kommenden Monat starten.",
        "Stellungnahmen können bis Ende {month} schriftlich oder direkt im Rathaus abgegeben werden.",
        "In {city} ist am Sonntagabend ein {age}-jähriger Mann festgenommen worden, nachdem sein Auto in ein Schaufenster gekracht war.",
        "Verletzt wurde niemand, der Sachschaden wird von der Polizei auf rund {price}.000 Euro geschätzt.",
        "Die {company} hat im dritten Quartal einen Gewinn von {price} Millionen Euro erzielt und damit die Erwartungen übertroffen.",
        "Die Aktie legte im frühen Handel um {pct} Prozent zu, gab einen Teil der Gewinne aber wieder ab.",
        "Vorstandschef {name} sagte, die Nachfrage habe sich im zweiten Halbjahr deutlich erholt.",
        "In den kommenden zwei Jahren sollen im Werk bei {city} rund {num2} neue Arbeitsplätze entstehen.",
        "Die Gewerkschaft begrüßte die Pläne, will aber genau darauf achten, zu welchen Bedingungen die Stellen besetzt werden.",
        "{team} hat am Samstag gegen {team2} mit {score} gewonnen und ist damit auf den dritten Tabellenplatz vorgerückt.",
        "Der Kapitän traf in der zweiten Hälfte doppelt, das zweite Tor fiel in der {minute}. Minute.",
        "Die Meteorologen erwarten für das Wochenende in {city} Temperaturen von bis zu {temp} Grad.",
        "Wegen Bauarbeiten wird die Bahnstrecke zwischen {city} und {city2} für {days} Tage gesperrt.",
        "Ersatzbusse fahren alle {minutes} Minuten, die Fahrzeit verlängert sich um bis zu eine Stunde.",
        "Das Museum in {city} hat ab {month} donnerstags bis 21 Uhr geöffnet.",
        "Der Eintritt kostet für Erwachsene {price} Euro, Kinder unter zwölf Jahren haben freien Eintritt.",
        "Eine Sprecherin sagte, man reagiere damit auf Wünsche von Berufstätigen, die tagsüber keine Zeit hätten.",
    ],
}

REPORTS = {
    "en": [
        "The FTSE 100 closed {pct} percent higher at {index} points on {weekday}, led by mining and energy shares.",
        "{company} gained {pct2} percent to {price}.{cents} pounds after raising its full-year forecast.",
        "The pound rose to {fx} dollars, while the yield on ten-year gilts fell to {yield_} percent.",
        "Brent crude traded at {oil} dollars a barrel, {pct} percent below its level a week earlier.",
        "In the {team} against {team2} match, the final score was {score} after a {half} half-time score.",
        "{name} finished the 10,000 metres in {mins}:{secs}, the fastest time of the season so far.",
        "Attendance was {num}, the highest at the ground since {y2}.",
        "Rainfall in {city} reached {rain} millimetres in {month}, about {pct2} percent more than the long-term average.",
        "The average temperature was {temp}.{tenth} degrees, with a maximum of {temp2} degrees on the {day}th.",
        "The council's budget for {y} totals {price} million pounds, of which {pct2} percent goes to schools.",
        "Spending on roads rises from {price2} million to {price} million, and the reserve stands at {num2} thousand.",
        "House prices in {city} rose {pct} percent year on year to an average of {num} pounds.",
        "Unemployment fell to {yield_} percent in the three months to {month}, from {pct} percent a year earlier.",
        "Inflation eased to {yield_} percent, with food prices up {pct2} percent and energy down {pct} percent.",
        "The central bank left its main rate at {yield_} percent, as most economists had expected.",
    ],
    "de": [
        "Der ATX schloss am {weekday} mit einem Plus von {pct} Prozent bei {index} Punkten, angeführt von Banken und Energiewerten.",
        "Die Papiere der {company} verteuerten sich um {pct2} Prozent auf {price},{cents} Euro, nachdem das Unternehmen seine Prognose angehoben hatte.",
        "Der Euro notierte bei {fx} Dollar, die Rendite zehnjähriger Staatsanleihen sank auf {yield_} Prozent.",
        "Ein Fass der Nordseesorte Brent kostete {oil} Dollar und damit {pct} Prozent weniger als vor einer Woche.",
        "Im Spiel {team} gegen {team2} stand es nach 90 Minuten {score}, zur Pause hatte es {half} geheißen.",
        "{name} lief die 10.000 Meter in {mins}:{secs} Minuten, die schnellste Zeit der bisherigen Saison.",
        "Vor {num} Zuschauern war das Stadion so gut besucht wie seit {y2} nicht mehr.",
        "In {city} fielen im {month} {rain} Liter Regen pro Quadratmeter, das sind rund {pct2} Prozent mehr als im langjährigen Mittel.",
        "Die Durchschnittstemperatur lag bei {temp},{tenth} Grad, der Höchstwert wurde am {day}. mit {temp2} Grad gemessen.",
        "Das Budget der Stadt für {y} umfasst {price} Millionen Euro, davon entfallen {pct2} Prozent auf Schulen und Kindergärten.",
        "Die Ausgaben für Straßen steigen von {price2} auf {price} Millionen Euro, die Rücklage beträgt {num2}.000 Euro.",
        "Die Wohnungspreise in {city} sind im Jahresvergleich um {pct} Prozent auf durchschnittlich {num} Euro gestiegen.",
        "Die Arbeitslosenquote sank im {month} auf {yield_} Prozent, nach {pct} Prozent im Vorjahresmonat.",
        "Die Inflation ging auf {yield_} Prozent zurück, Lebensmittel verteuerten sich um {pct2} Prozent, Energie wurde um {pct} Prozent billiger.",
        "Die Notenbank beließ den Leitzins bei {yield_} Prozent, wie es die meisten Ökonomen erwartet hatten.",
    ],
}

FORUM = {
    "en": {
        "open": ["Hi everyone,", "Hello all,", "Hey folks,", "Hi,"],
        "body": [
            "my washing machine has started making a loud noise during the spin cycle and I am not sure what to check first.",
            "It is about six years old and has never had a problem before.",
            "I already cleaned the filter at the bottom and there was nothing stuck in it.",
            "The noise only happens when the drum is full, with a small load it is quiet.",
            "Could it be the bearings, or is that usually a different kind of sound?",
            "I would rather not call a technician if it is something simple that I can fix myself.",
            "Thanks in advance for any ideas, and sorry if this has been asked before.",
            "I had exactly the same thing last winter and in my case it was a coin stuck between the drum and the tub.",
            "You can sometimes hear it rattle if you turn the drum slowly by hand.",
            "If it is the bearings you usually hear a rumbling that gets louder over a few weeks.",
            "Check that the machine is level as well, an uneven floor can make a lot of noise at high speed.",
            "Mine turned out to be the shock absorbers, which were cheap to replace with a screwdriver and an hour of time.",
            "Update: it was a hair clip caught behind the drum paddle, the noise is gone now.",
        ],
        "close": ["Cheers, Mark", "Thanks!", "Best, Julia", "Kind regards", "Thanks again everyone"],
    },
    "de": {
        "open": ["Hallo zusammen,", "Hallo Leute,", "Servus,", "Hi,"],
        "body": [
            "meine Waschmaschine macht seit ein paar Tagen beim Schleudern ein lautes Geräusch und ich weiß nicht, wo ich anfangen soll.",
            "Sie ist ungefähr sechs Jahre alt und hatte bisher nie Probleme.",
            "Das Flusensieb unten habe ich schon gereinigt, da war aber nichts drin.",
            "Das Geräusch kommt nur, wenn die Trommel voll ist, bei wenig Wäsche ist sie ruhig.",
            "Kann das am Lager liegen, oder klingt das normalerweise anders?",
            "Ich würde ungern gleich einen Techniker rufen, wenn es etwas Einfaches ist, das ich selbst reparieren kann.",
            "Danke schon mal für eure Tipps, und sorry, falls das schon mal gefragt wurde.",
            "Ich hatte genau das Gleiche letzten Winter, bei mir war es eine Münze zwischen Trommel und Bottich.",
            "Man hört es manchmal klappern, wenn man die Trommel langsam mit der Hand dreht.",
            "Wenn es das Lager ist, hört man meistens ein Brummen, das über ein paar Wochen lauter wird.",
            "Schau auch nach, ob die Maschine gerade steht, ein unebener Boden macht beim Schleudern viel Lärm.",
            "Bei mir waren es die Stoßdämpfer, die konnte ich mit einem Schraubenzieher in einer Stunde selbst tauschen.",
            "Nachtrag: Es war eine Haarspange hinter der Mitnehmerrippe, jetzt ist Ruhe.",
        ],
        "close": ["Grüße, Martin", "Danke!", "LG Julia", "Viele Grüße", "Danke euch allen"],
    },
}

MENUS = {
    "en": [
        "Home",
        "News",
        "Sport",
        "Business",
        "Culture",
        "Travel",
        "Weather",
        "Contact",
        "About us",
        "Shop",
        "Login",
        "Register",
        "Search",
        "Newsletter",
        "Careers",
        "Imprint",
        "Privacy",
        "FAQ",
    ],
    "de": [
        "Startseite",
        "Nachrichten",
        "Sport",
        "Wirtschaft",
        "Kultur",
        "Reisen",
        "Wetter",
        "Kontakt",
        "Über uns",
        "Shop",
        "Anmelden",
        "Registrieren",
        "Suche",
        "Newsletter",
        "Karriere",
        "Impressum",
        "Datenschutz",
        "Hilfe",
    ],
}
COOKIES = {
    "en": [
        "We use cookies and similar technologies to give you the best experience on our website.",
        "Some are essential, others help us improve the site and show you personalised content.",
        "You can change your choice at any time under Privacy settings.",
        "Accept all",
        "Reject all",
        "Manage preferences",
        "Cookie policy",
        "Privacy policy",
        "Necessary",
        "Statistics",
        "Marketing",
        "Save",
    ],
    "de": [
        "Wir verwenden Cookies und ähnliche Technologien, um Ihnen das beste Erlebnis auf unserer Website zu bieten.",
        "Einige sind notwendig, andere helfen uns, die Seite zu verbessern und Ihnen personalisierte Inhalte zu zeigen.",
        "Sie können Ihre Auswahl jederzeit unter Datenschutzeinstellungen ändern.",
        "Alle akzeptieren",
        "Alle ablehnen",
        "Einstellungen verwalten",
        "Cookie-Richtlinie",
        "Datenschutzerklärung",
        "Notwendig",
        "Statistik",
        "Marketing",
        "Speichern",
    ],
}
SPAM = {
    "en": [
        "cheap",
        "buy",
        "online",
        "best price",
        "discount",
        "free shipping",
        "shoes",
        "sale",
        "outlet",
        "replica",
        "watches",
        "casino",
        "bonus",
        "loans",
        "fast",
    ],
    "de": [
        "günstig",
        "kaufen",
        "online",
        "bester Preis",
        "Rabatt",
        "versandkostenfrei",
        "Schuhe",
        "Sale",
        "Outlet",
        "Uhren",
        "Casino",
        "Bonus",
        "Kredit",
        "schnell",
        "billig",
    ],
}
PRODUCTS = {
    "en": ["Running shoe", "Rain jacket", "Coffee grinder", "Desk lamp", "Backpack", "Phone case"],
    "de": ["Laufschuh", "Regenjacke", "Kaffeemühle", "Schreibtischlampe", "Rucksack", "Handyhülle"],
}
LOGIN = {
    "en": [
        "Sign in",
        "Email address",
        "Password",
        "Remember me",
        "Forgot your password?",
        "Sign in",
        "New here? Create an account",
        "Page not found",
        "Error 404",
        "Back to home",
    ],
    "de": [
        "Anmelden",
        "E-Mail-Adresse",
        "Passwort",
        "Angemeldet bleiben",
        "Passwort vergessen?",
        "Anmelden",
        "Neu hier? Konto erstellen",
        "Seite nicht gefunden",
        "Fehler 404",
        "Zurück zur Startseite",
    ],
}
BOILER = {
    "en": "Subscribe to our newsletter and never miss an offer! Sign up now.",
    "de": "Abonnieren Sie unseren Newsletter und verpassen Sie kein Angebot mehr! Jetzt anmelden.",
}


def slots(rng: random.Random, lang: str) -> dict:
    city, city2 = rng.sample(CITIES[lang], 2)
    team, team2 = rng.sample(TEAMS[lang], 2)
    a, b = rng.randint(1, 5), rng.randint(0, 4)
    sep, thousands = (",", ".") if lang == "de" else (".", ",")
    return dict(
        city=city,
        city2=city2,
        team=team,
        team2=team2,
        name=rng.choice(NAMES[lang]),
        company=rng.choice(COMPANIES[lang]),
        month=rng.choice(MONTHS[lang]),
        weekday=rng.choice(["Monday", "Tuesday", "Friday"] if lang == "en" else ["Montag", "Dienstag", "Freitag"]),
        pct=f"{rng.randint(1, 9)}{sep}{rng.randint(0, 9)}",
        pct2=f"{rng.randint(1, 19)}{sep}{rng.randint(0, 9)}",
        yield_=f"{rng.randint(1, 6)}{sep}{rng.randint(0, 9)}",
        price=str(rng.randint(2, 95)),
        price2=str(rng.randint(2, 95)),
        cents=f"{rng.randint(0, 99):02d}",
        num=f"{rng.randint(12, 480)}{thousands}{rng.randint(0, 999):03d}",
        num2=str(rng.randint(40, 900)),
        a=str(rng.randint(20, 40)),
        b=str(rng.randint(5, 19)),
        score=f"{a}:{b}" if lang == "de" else f"{a}-{b}",
        half=f"{min(a, 1)}:{min(b, 1)}" if lang == "de" else f"{min(a, 1)}-{min(b, 1)}",
        minute=str(rng.randint(50, 89)),
        temp=str(rng.randint(12, 33)),
        temp2=str(rng.randint(25, 36)),
        tenth=str(rng.randint(0, 9)),
        days=str(rng.randint(3, 21)),
        minutes=str(rng.choice([10, 15, 20, 30])),
        age=str(rng.randint(19, 78)),
        index=f"{rng.randint(3, 8)}{thousands}{rng.randint(0, 999):03d}",
        fx=f"1{sep}{rng.randint(5, 35):02d}",
        oil=f"{rng.randint(60, 95)}{sep}{rng.randint(10, 99)}",
        mins=str(rng.randint(26, 29)),
        secs=f"{rng.randint(0, 59):02d}",
        rain=str(rng.randint(20, 160)),
        day=str(rng.randint(2, 28)),
        y=str(rng.randint(2015, 2025)),
        y2=str(rng.randint(2005, 2014)),
    )


def agency(rng: random.Random, lang: str) -> str:
    tag = rng.choice(AGENCIES[lang])
    return tag.format(
        d=rng.randint(1, 28), m=rng.randint(1, 12), y=rng.randint(2012, 2025), month=rng.choice(MONTHS["en"])
    )


def fill(rng: random.Random, lang: str, sentences: list[str], k: int) -> list[str]:
    return [s.format(**slots(rng, lang)) for s in rng.sample(sentences, k)]


def news(rng, lang):
    """One line of 1-3k characters ending in the agency tag; no line breaks at all."""
    return " ".join(fill(rng, lang, NEWS[lang], rng.randint(8, 16))) + " " + agency(rng, lang)


def report(rng, lang):
    lines = fill(rng, lang, REPORTS[lang], rng.randint(6, 12))
    if rng.random() < 0.5:
        return " ".join(lines) + (" " + agency(rng, lang) if rng.random() < 0.7 else "")
    return "\n".join(lines)


def forum(rng, lang):
    f = FORUM[lang]
    question = [rng.choice(f["open"]), " ".join(f["body"][: rng.randint(4, 7)]), rng.choice(f["close"])]
    answers = rng.sample(f["body"][7:], len(f["body"][7:]))  # replies do not repeat each other
    cuts = sorted(rng.sample(range(1, len(answers)), rng.randint(0, 2)))
    replies = [" ".join(answers[a:b]) for a, b in zip([0, *cuts], [*cuts, len(answers)])]
    return "\n".join(question + replies)


def menu(rng, lang):
    return "\n".join(rng.sample(MENUS[lang], rng.randint(8, 16)))


def cookie(rng, lang):
    text = COOKIES[lang]
    return "\n".join(text[:3] + rng.sample(text[3:], rng.randint(4, 9)))


def spam(rng, lang):
    words = SPAM[lang]
    return " ".join(rng.choice(words) for _ in range(rng.randint(60, 200)))


def shop(rng, lang):
    cur = "£" if lang == "en" else "€"
    rows = []
    for _ in range(rng.randint(8, 20)):
        rows += [
            rng.choice(PRODUCTS[lang]),
            f"{rng.randint(5, 199)}.{rng.randint(0, 99):02d} {cur}",
            "Add to cart" if lang == "en" else "In den Warenkorb",
        ]
    return "\n".join(rows)


def login(rng, lang):
    return "\n".join(rng.sample(LOGIN[lang], rng.randint(5, 10)))


def repeated(rng, lang):
    return "\n".join([BOILER[lang]] * rng.randint(6, 15) + rng.sample(MENUS[lang], 4))


CLEAN = {"news": news, "report": report, "forum": forum}
JUNK = {
    "menu": menu,
    "cookie_banner": cookie,
    "keyword_spam": spam,
    "shop_grid": shop,
    "login_page": login,
    "repeated_boilerplate": repeated,
}


def main() -> None:
    rng = random.Random(2026)
    rows = []
    for lang in ("en", "de"):
        for kind, make in CLEAN.items():
            rows += [
                {"text": make(rng, lang), "label": "clean", "kind": kind, "language": lang}
                for _ in range({"news": 60, "report": 30, "forum": 20}[kind])
            ]
        for kind, make in JUNK.items():
            rows += [{"text": make(rng, lang), "label": "junk", "kind": kind, "language": lang} for _ in range(10)]
    with OUT.open("w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            f.write(json.dumps({"id": f"reg-{i:04d}", **row}, ensure_ascii=False) + "\n")
    print(f"{len(rows)} records -> {OUT}")


if __name__ == "__main__":
    main()
