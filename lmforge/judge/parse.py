"""Strict parsing of a judge's reply: exactly one `[[rating]]` (1-10, decimals allowed) or one of
[[A]]/[[B]]/[[C]]. Anything else is a parse failure: never a silent 0 or tie."""

import re

RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def parse_rating(text: str) -> float | None:
    found = {float(x) for x in RATING.findall(text)}
    if len(found) != 1:
        return None  # no rating, or two different ones
    value = found.pop()
    return value if 1 <= value <= 10 else None


def parse_verdict(text: str) -> str | None:
    found = set(VERDICT.findall(text))
    return found.pop() if len(found) == 1 else None
