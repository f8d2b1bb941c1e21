"""Self-Instruct's filters for a new instruction, each with a named reason."""

from lmforge.self_instruct.rouge import rouge_l, words
from lmforge.text import identify

# tasks a text-only model cannot do (Self-Instruct's list, extended; and a German one)
BLACKLIST = {
    "en": [
        "image",
        "images",
        "graph",
        "graphs",
        "picture",
        "pictures",
        "file",
        "files",
        "map",
        "maps",
        "draw",
        "plot",
        "go to",
        "video",
        "audio",
        "music",
        "flowchart",
        "diagram",
        "photo",
        "screenshot",
        "url",
        "website",
        "download",
        "upload",
    ],
    "de": [
        "bild",
        "bilder",
        "grafik",
        "diagramm",
        "foto",
        "datei",
        "dateien",
        "karte",
        "zeichne",
        "zeichnen",
        "plotte",
        "gehe zu",
        "geh zu",
        "video",
        "audio",
        "musik",
        "flussdiagramm",
        "screenshot",
        "webseite",
        "website",
        "herunterladen",
        "hochladen",
    ],
}


def instruction_problem(text: str, pool: list[list[str]], language: str, cfg) -> tuple[str | None, float]:
    """(reason it is dropped or None, highest ROUGE-L against the pool)."""
    n = len(text.split())
    if n < cfg.min_words:
        return "too short", 0.0
    if n > cfg.max_words:
        return "too long", 0.0
    if not text[0].isalnum():
        return "starts with punctuation", 0.0
    low = f" {' '.join(words(text))} "
    if any(f" {w} " in low for w in BLACKLIST.get(language, BLACKLIST["en"])):
        return "blacklisted keyword", 0.0
    lang, score = identify(text)
    if lang != language or score < 0.5:
        return "wrong language", 0.0
    tokens = words(text)
    best = max((rouge_l(tokens, p) for p in pool), default=0.0)
    if best > cfg.max_similarity:
        return "too similar (ROUGE-L)", best
    return None, best


def instance_problem(instance: dict, seen: set[tuple[str, str]]) -> str | None:
    inp, out = instance.get("input", "").strip(), instance.get("output", "").strip()
    if not out:
        return "empty output"
    if inp and out == inp:
        return "output repeats input"
    if len(out) > 2000:
        return "output too long"
    if (inp, out) in seen:
        return "duplicate instance"
    return None
