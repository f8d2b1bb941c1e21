"""Write the shipped raw "crawl" sample (examples/raw/crawl_{0,1}.jsonl) that the demo curates.

Clean pages are the shipped corpus documents (examples/corpus/*/train.jsonl) merged one to four
per page, English and German shuffled together. Planted among them, the kinds of page a web crawl
is full of, each with the reason curation should drop it: exact and near-duplicate copies, pages
in other languages, cookie/menu boilerplate, keyword spam, a lorem-ipsum page, contact details to
redact, and one malformed line, one empty record and one line with a broken byte. Written for
lmforge; re-running the script reproduces the files byte for byte.

    python examples/make_raw.py
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "raw"

OTHER_LANGUAGES = [
    "Le boulanger ouvre sa boutique avant le lever du soleil. Les habitants du village achètent du pain "
    "frais chaque matin, et les enfants passent devant la vitrine en allant à l'école.",
    "La vieille maison au bord de la rivière appartient à ma tante depuis quarante ans. En été, nous y "
    "passons les vacances et nous mangeons dans le jardin sous les arbres.",
    "El pescador sale al mar muy temprano y vuelve al puerto cuando el sol está alto. Su familia vende el "
    "pescado en el mercado de la plaza todos los sábados.",
    "Durante el invierno la nieve cubre los campos y los caminos del pueblo. Los vecinos se reúnen en la "
    "cocina para contar historias junto al fuego.",
    "Il giardiniere innaffia i pomodori ogni sera e racconta ai bambini storie della sua giovinezza. La "
    "piazza del paese si riempie di gente quando arriva la primavera.",
    "De bakker bakt elke ochtend vers brood en de hele straat ruikt naar warme broodjes. Op zaterdag staat "
    "er een lange rij voor de deur van de winkel.",
]
BOILERPLATE = [
    "Home\nAbout us\nProducts\nContact\nImprint\nPrivacy\nLogin\nRegister\nCart (0)\nSearch",
    "We use cookies to improve your experience.\nAccept all\nReject\nSettings\nPrivacy policy\nTerms of use",
    "Startseite\nÜber uns\nProdukte\nKontakt\nImpressum\nDatenschutz\nAnmelden\nWarenkorb (0)\nSuche",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris.",
]
SPAM = ["cheap flights cheap hotels cheap cars best price", "günstig kaufen günstig bestellen jetzt sofort"]
CONTACT = {
    "en": "For questions, write to {mail} or call +44 20 7946 {n:04d} during office hours.",
    "de": "Bei Fragen schreiben Sie an {mail} oder rufen Sie 030 1234{n:04d} an, wir helfen gern.",
}


def pages(lang: str, rng: random.Random) -> list[str]:
    docs = [json.loads(line)["text"] for line in (HERE / "corpus" / lang / "train.jsonl").open(encoding="utf-8")]
    out, i = [], 0
    while i < len(docs):
        k = rng.randint(1, 4)
        out.append("\n".join(docs[i : i + k]))
        i += k
    return out


def main() -> None:
    rng = random.Random(7)
    records = [
        {"text": t, "url": f"https://example.org/{lang}/{j}"}
        for lang in ("en", "de")
        for j, t in enumerate(pages(lang, rng))
    ]
    rng.shuffle(records)
    clean = len(records)
    for j in range(clean // 20):  # 5% exact copies, some with different spacing and case
        src = rng.choice(records[:clean])["text"]
        records.append({"text": src.upper() if j % 3 == 0 else src.replace(". ", ".  "), "url": "mirror"})
    for j in range(clean // 20):  # 5% near copies: a page with its last sentence replaced
        src = rng.choice(records[:clean])["text"]
        records.append({"text": src.rsplit(". ", 1)[0] + ". That is all for today.", "url": "syndicated"})
    for j, text in enumerate(OTHER_LANGUAGES * 3):
        records.append({"text": text, "url": f"https://example.org/other/{j}"})
    for j in range(12):
        records.append({"text": BOILERPLATE[j % len(BOILERPLATE)], "url": f"https://example.org/page/{j}"})
        records.append({"text": " ".join([SPAM[j % 2]] * 20), "url": f"https://spam.example/{j}"})
    for j in range(10):  # contact lines end in a full stop, so the page keeps them and PII is redacted
        target = rng.randrange(clean)
        lang = "de" if "die" in records[target]["text"].split() else "en"
        mail = f"{['anna', 'max', 'info'][j % 3]}.{j}@example.{lang if lang == 'de' else 'com'}"
        records[target]["text"] += "\n" + CONTACT[lang].format(mail=mail, n=1000 + j)
    rng.shuffle(records)
    OUT.mkdir(exist_ok=True)
    half = len(records) // 2
    for part, chunk in enumerate((records[:half], records[half:])):
        lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in chunk]
        if part == 0:
            lines.insert(3, b'{"text": "an unterminated record')  # malformed JSON
            lines.insert(9, json.dumps({"text": "   ", "url": "https://example.org/empty"}).encode())
        else:
            lines.insert(5, b'{"text": "Gr\xfc\xdfe aus M\xfcnchen"}')  # Latin-1 bytes, not UTF-8
        (OUT / f"crawl_{part}.jsonl").write_bytes(b"\n".join(lines) + b"\n")


if __name__ == "__main__":
    main()
