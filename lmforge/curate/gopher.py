"""Gopher's quality and repetition rules (Rae et al. 2021, table A1), on pre-split words.

Same rules, order and reason names as datatrove's GopherQualityFilter / GopherRepetitionFilter so
drop statistics compare one to one; the difference is speed. Word n-grams become 64-bit rolling
hashes of word ids in numpy instead of joined strings, and the "duplicated n-gram characters" scan
(a sequential walk that skips ahead after each hit) only visits positions whose n-gram occurs more
than once: a unique n-gram is never hit and never causes a skip, so leaving it out changes nothing.
Once all n-grams of some n are unique, longer ones are too, and their scans are skipped.
"""

import re
from collections.abc import Sequence

import numpy as np

# datatrove's punctuation set: a "word" made only of these is a symbol, not a word
from datatrove.utils.text import PUNCTUATION_SET

ALPHA = re.compile(r"[^\W\d_]")
PARAGRAPHS = re.compile(r"\n{2,}")
LINES = re.compile(r"\n+")
MIX = np.uint64(0x9E3779B97F4A7C15)


def gopher_quality(
    text: str,
    words: list[str],
    *,
    min_doc_words: int | None = 50,
    max_doc_words: int | None = 100_000,
    min_avg_word_length: float | None = 3,
    max_avg_word_length: float | None = 10,
    max_symbol_word_ratio: float | None = 0.1,
    max_bullet_lines_ratio: float | None = 0.9,
    max_ellipsis_lines_ratio: float | None = 0.3,
    max_non_alpha_words_ratio: float | None = 0.8,
    min_stop_words: int | None = 2,
    stop_words: Sequence[str] = ("the", "be", "to", "of", "and", "that", "have", "with"),
    punctuation_counts_as_word: bool = True,
) -> str | None:
    """The first Gopher quality rule the document breaks, or None.

    `punctuation_counts_as_word=False` takes Gopher's alphabetic-word ratio over words only, as the
    paper defines it, instead of over every token of datatrove's word split: there each comma and
    full stop is a "word" with no letter, so the rule ends up measuring punctuation density, and a
    report with figures in every sentence ("rose 1.2 percent to 7,432 points.") falls under 0.8."""
    n_words = len(words)
    non_symbol = [w for w in words if not PUNCTUATION_SET.issuperset(w)]
    lengths = [len(w) for w in non_symbol]
    if min_doc_words and len(lengths) < min_doc_words:
        return "gopher_short_doc"
    if max_doc_words and len(lengths) > max_doc_words:
        return "gopher_long_doc"
    avg = sum(lengths) / len(lengths) if lengths else float("nan")
    if min_avg_word_length and avg < min_avg_word_length:
        return "gopher_below_avg_threshold"
    if max_avg_word_length and avg > max_avg_word_length:
        return "gopher_above_avg_threshold"
    if max_symbol_word_ratio and text.count("#") / n_words > max_symbol_word_ratio:
        return "gopher_too_many_hashes"
    if max_symbol_word_ratio and (text.count("...") + text.count("…")) / n_words > max_symbol_word_ratio:
        return "gopher_too_many_ellipsis"
    lines = text.splitlines()
    if (
        max_bullet_lines_ratio
        and sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines) > max_bullet_lines_ratio
    ):
        return "gopher_too_many_bullets"
    if (
        max_ellipsis_lines_ratio
        and sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines) > max_ellipsis_lines_ratio
    ):
        return "gopher_too_many_end_ellipsis"
    counted = words if punctuation_counts_as_word else non_symbol
    if (
        max_non_alpha_words_ratio
        and sum(1 for w in counted if w.isalpha() or ALPHA.search(w)) / max(len(counted), 1) < max_non_alpha_words_ratio
    ):
        return "gopher_below_alpha_threshold"
    if min_stop_words and len(set(stop_words).intersection(words)) < min_stop_words:
        return "gopher_enough_stop_words"
    return None


def _duplicates(parts: list[str]) -> tuple[int, int]:
    """(repeated elements, characters in repeats): every occurrence after the first counts."""
    seen, elements, chars = set(), 0, 0
    for p in parts:
        if p in seen:
            elements, chars = elements + 1, chars + len(p)
        else:
            seen.add(p)
    return elements, chars


class _NgramKeys:
    """64-bit keys of word n-grams (wrapping multiply-add over word ids), each n built from n - 1."""

    def __init__(self, ids: np.ndarray):
        self.ids, self.keys = ids, {1: ids}

    def __call__(self, n: int) -> np.ndarray:
        for m in range(max(self.keys) + 1, n + 1):
            self.keys[m] = self.keys[m - 1][:-1] * MIX + self.ids[m - 1 :]
        return self.keys[n]


def _duplicated_chars(inverse: np.ndarray, counts: np.ndarray, span: np.ndarray, n: int) -> int:
    """Characters covered by repeated n-grams, scanning left to right and jumping n words past a hit."""
    repeated = np.flatnonzero(counts[inverse] > 1)
    seen, chars, next_free = set(), 0, 0
    for p in repeated.tolist():
        if p < next_free:
            continue
        key = inverse[p]
        if key in seen:
            chars += int(span[p])
            next_free = p + n
        else:
            seen.add(key)
    return chars


def gopher_repetition(
    text: str,
    words: list[str],
    *,
    dup_line_frac: float | None = 0.3,
    dup_para_frac: float | None = 0.3,
    dup_line_char_frac: float | None = 0.2,
    dup_para_char_frac: float | None = 0.2,
    top_n_grams: Sequence[Sequence[float]] = ((2, 0.2), (3, 0.18), (4, 0.16)),
    dup_n_grams: Sequence[Sequence[float]] = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
) -> str | None:
    """The first Gopher repetition rule the document breaks, or None."""
    if not text:
        return "empty"
    paragraphs = PARAGRAPHS.split(text.strip())
    repeats, chars = _duplicates(paragraphs)
    if dup_para_frac and repeats / len(paragraphs) > dup_para_frac:
        return "dup_para_frac"
    if dup_para_char_frac and chars / len(text) > dup_para_char_frac:
        return "dup_para_char_frac"
    lines = LINES.split(text)
    repeats, chars = _duplicates(lines)
    if dup_line_frac and repeats / len(lines) > dup_line_frac:
        return "dup_line_frac"
    if dup_line_char_frac and chars / len(text) > dup_line_char_frac:
        return "dup_line_char_frac"

    vocab: dict[str, int] = {}
    ids = np.array([vocab.setdefault(w, len(vocab) + 1) for w in words], dtype=np.uint64)
    cum = np.concatenate([[0], np.cumsum([len(w) for w in words])])
    ngram_keys = _NgramKeys(ids)
    for n, frac in top_n_grams:
        n = int(n)
        if len(words) < n:
            continue
        _, first, counts = np.unique(ngram_keys(n), return_index=True, return_counts=True)
        top = counts.max()
        start = int(first[counts == top].min())  # ties: the n-gram seen first, as Counter.most_common
        chars = int(cum[start + n] - cum[start]) + n - 1  # the n-gram joined with spaces
        if chars * int(top) / len(text) > frac:
            return f"top_{n}_gram"
    unique_from = None  # once every n-gram is unique, every longer one is too
    for n, frac in dup_n_grams:
        n = int(n)
        if len(words) < n or (unique_from is not None and n >= unique_from):
            continue
        _, inverse, counts = np.unique(ngram_keys(n), return_inverse=True, return_counts=True)
        if counts.max() == 1:
            unique_from = n
            continue
        span = cum[n:] - cum[: len(cum) - n]  # characters of each n-gram joined without spaces
        if _duplicated_chars(inverse, counts, span, n) / len(text) > frac:
            return f"duplicated_{n}_n_grams"
    return None
