"""Spans a translation must not touch (code, URLs, template fields, numbers with units): replaced by
numbered markers before the text goes out, put back after, and the reply rejected unless every
marker comes back exactly once."""

import re

MARKER = "⟦{}⟧"
MARKER_RE = re.compile(r"⟦(\d+)⟧")
UNITS = r"(?:km/h|km|cm|mm|m|kg|mg|g|ml|l|°C|°F|%|KB|MB|GB|TB|ms|s|min|h|Hz|kHz|MHz|GHz|kW|W|V|mph)"
PATTERNS = [  # order matters: a code block may hold a URL, inline code a number
    ("code block", re.compile(r"```.*?```", re.DOTALL)),
    ("inline code", re.compile(r"`[^`\n]+`")),
    ("url", re.compile(r"https?://[^\s<>\"'`)\]]+")),
    ("template field", re.compile(r"\{\{[^{}]*\}\}|\{[A-Za-z_][A-Za-z0-9_]*\}|\$\{[^}]+\}|%\([a-z_]+\)[sd]|%[sd]")),
    ("number with unit", re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)?\s?" + UNITS + r"(?![A-Za-z])")),
]


class ProtectedSpanError(ValueError):
    pass


def protect(text: str, spans: list[str]) -> str:
    """`text` with every protected span replaced by a marker; the spans are appended to `spans`
    (shared across a record's fields, so markers are unique within the record)."""
    for _, pattern in PATTERNS:

        def mark(m: re.Match) -> str:
            if MARKER_RE.fullmatch(m.group(0)):
                return m.group(0)
            spans.append(m.group(0))
            return MARKER.format(len(spans) - 1)

        text = pattern.sub(mark, text)
    return text


def restore(text: str, spans: list[str], expected: set[int]) -> str:
    """Put the spans back; every expected marker exactly once and no other, else ProtectedSpanError."""
    found = [int(i) for i in MARKER_RE.findall(text)]
    for i in sorted(expected):
        if found.count(i) != 1:
            raise ProtectedSpanError(
                f"protected span {MARKER.format(i)} ({_short(spans[i])}) {'missing' if i not in found else 'repeated'}"
            )
    extra = sorted(set(found) - expected)
    if extra:
        raise ProtectedSpanError(f"unknown marker {MARKER.format(extra[0])} in the reply")
    return MARKER_RE.sub(lambda m: spans[int(m.group(1))], text)


def markers_in(text: str) -> set[int]:
    return {int(i) for i in MARKER_RE.findall(text)}


def _short(s: str) -> str:
    return repr(s if len(s) <= 30 else s[:27] + "...")
