"""Word and sentence counts for short texts, used by the report page."""

import re
from collections import Counter
from dataclasses import dataclass

SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


@dataclass
class Stats:
    words: int
    sentences: int
    top: list[tuple[str, int]]

    @property
    def words_per_sentence(self) -> float:
        return self.words / self.sentences if self.sentences else 0.0


def count(text: str, top_n: int = 5) -> Stats:
    """Count words (letters only, apostrophes inside words kept) and sentences."""
    words = [w.lower() for w in WORD.findall(text)]
    sentences = len(SENTENCE_END.findall(text)) or (1 if words else 0)
    return Stats(len(words), sentences, Counter(words).most_common(top_n))


def merge(parts: list[Stats], top_n: int = 5) -> Stats:
    totals = Counter()
    for p in parts:
        totals.update(dict(p.top))
    return Stats(
        sum(p.words for p in parts),
        sum(p.sentences for p in parts),
        totals.most_common(top_n),
    )
