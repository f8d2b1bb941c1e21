"""Answers out of generated text: extraction, normalisation, exact match and token F1.

A generative task's reply is cut at its stop sequences by the decoder; here the answer is taken
out of it (`extract`) and both it and the gold answers are normalised (`normalize`) before they are
compared, as lm-evaluation-harness's filters and `exact_match` options and SQuAD's F1 do:

    exact          the whole reply, stripped
    regex          the first match of the task's pattern (its first group, if it has one)
    first_number   the first number in the reply; last_number: the last (chain-of-thought answers)
    choice_letter  the first letter A-J standing as an answer ("B", "(B)", "B)", "is B.")

An answer that cannot be extracted is "[invalid]", lm-eval's marker, and never matches. Numbers are
read in the task's language: "1.000,5" is one thousand and a half in German, "1,000.5" in English;
with both separators the last one is the decimal point, with one, the language decides.
"""

import re
import string
from collections import Counter

INVALID = "[invalid]"
NUMBER = re.compile(r"-?\d(?:[\d.,]*\d)?")
# a letter standing as an answer: "B", "(B)", "B)", "is B." (not the "I" or "A" starting a sentence)
LETTER = re.compile(r"(?:^|[\s(])([A-J])(?:[).:,]|\s*$)")
Normalisation = str  # one of "case", "whitespace", "punctuation", "numbers"


def extract(reply: str, how: str, pattern: str | None = None) -> str:
    if how == "exact":
        return reply.strip()
    if how == "regex":
        m = re.search(pattern or "", reply)
        return (m.group(1) if m.groups() else m.group(0)).strip() if m else INVALID
    if how in ("first_number", "last_number"):
        found = NUMBER.findall(reply)
        return (found[0] if how == "first_number" else found[-1]) if found else INVALID
    if how == "choice_letter":
        m = LETTER.search(reply)
        return m.group(1) if m else INVALID
    raise ValueError(f"unknown extraction {how!r}")


def read_number(text: str, language: str) -> float | None:
    """A number as written in `language` (thousands separators and decimal marks), or None."""
    text = text.strip().replace("\u202f", "").replace("\u00a0", "").replace(" ", "").replace("'", "")
    if not NUMBER.fullmatch(text):
        return None
    dot, comma = text.rfind("."), text.rfind(",")
    if dot >= 0 and comma >= 0:  # both: the last one is the decimal mark
        decimal = "." if dot > comma else ","
    elif dot >= 0 or comma >= 0:
        mark = "." if dot >= 0 else ","
        grouped = re.fullmatch(rf"-?\d{{1,3}}(\{mark}\d{{3}})+", text) is not None
        decimal_mark = "," if language == "de" else "."
        # one kind of separator: a decimal mark in this language, unless it appears twice or more
        decimal = mark if mark == decimal_mark and text.count(mark) == 1 else None
        if decimal is None and not grouped:
            return None
    else:
        decimal = None
    thousands = {".": ",", ",": ".", None: ".,"}[decimal]
    for t in thousands:
        text = text.replace(t, "")
    return float(text.replace(",", ".")) if decimal else float(text)


def number_text(value: float) -> str:
    """A canonical spelling: 1000, 1000.5, -3 (no thousands separators, no trailing zeros)."""
    return str(int(value)) if value == int(value) else repr(value)


def normalise(text: str, how: list[str], language: str) -> str:
    if "numbers" in how:
        value = read_number(text, language)
        if value is not None:
            text = number_text(value)
    if "case" in how:
        text = text.lower()
    if "punctuation" in how:
        text = text.translate(str.maketrans("", "", string.punctuation))
    if "whitespace" in how:
        text = " ".join(text.split())
    return text


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD's F1 over whitespace tokens (both already normalised)."""
    p, g = prediction.split(), gold.split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def score(answer: str, golds: list[str], how: list[str], language: str) -> dict[str, float]:
    """exact_match and f1 of one extracted answer against every accepted gold answer (the best)."""
    if answer == INVALID:
        return {"exact_match": 0.0, "f1": 0.0}
    a = normalise(answer, how, language)
    gs = [normalise(g, how, language) for g in golds]
    return {"exact_match": float(any(a == g for g in gs)), "f1": max(token_f1(a, g) for g in gs)}
