"""FineWeb's own quality rules (Penedo et al. 2024): line punctuation, short lines, duplicated
line characters and list-likeness, with datatrove's FineWebQualityFilter thresholds and reasons."""

import re

from datatrove.utils.text import TERMINAL_PUNCTUATION

STOP_CHARS = tuple(TERMINAL_PUNCTUATION)
# a short parenthesised tag closing a line: "(APA, 16.7.2015)", "(dpa)", "(Reuters, 3 March 2019)"
SOURCE_TAG = re.compile(r"\s*\([^()\n]{1,40}\)\s*$")


def fineweb_quality(
    text: str,
    words: list[str],
    *,
    line_punct_thr: float = 0.12,
    line_punct_exclude_zero: bool = False,
    short_line_thr: float = 0.67,
    short_line_length: int = 30,
    char_duplicates_ratio: float = 0.01,
    new_line_ratio: float = 0.3,
    source_tag_ends_line: bool = False,
) -> str | None:
    """The first FineWeb rule the document breaks, or None.

    `source_tag_ends_line=True` judges a line's end before a closing source tag, so a one-line
    news article "... the vote passed. (Reuters)" counts as ending in a full stop; without it such
    an article has a line-punctuation ratio of 0 and is dropped whole."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return "empty"
    ends = [SOURCE_TAG.sub("", line) for line in lines] if source_tag_ends_line else lines
    ratio = sum(1 for line in ends if line.endswith(STOP_CHARS)) / len(lines)
    if ratio < line_punct_thr and not (ratio == 0 and line_punct_exclude_zero):
        return "line_punct_ratio"
    if sum(1 for line in lines if len(line) <= short_line_length) / len(lines) > short_line_thr:
        return "short_line_ratio"
    seen, dup_chars = set(), 0
    for line in lines:
        if line in seen:
            dup_chars += len(line)
        seen.add(line)
    if dup_chars / len(text.replace("\n", "")) > char_duplicates_ratio:
        return "char_dup_ratio"
    if text.count("\n") / len(words) > new_line_ratio:
        return "list_ratio"
    return None
