"""Language ID as a datatrove filter (the model itself: lmforge/text/language.py).

Each document gets `metadata["language"]` and `metadata["language_score"]`; documents outside
`languages` or not above `threshold` are dropped with the reason "language".
"""

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from lmforge.text import identify


class OfflineLanguageFilter(BaseFilter):
    name = "🌍 Language ID (offline)"

    def __init__(
        self, languages: list[str] | None = None, threshold: float = 0.65, exclusion_writer: DiskWriter | None = None
    ):
        super().__init__(exclusion_writer)
        self.languages = set(languages or [])
        self.threshold = threshold

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lang, score = identify(doc.text)
        doc.metadata["language"], doc.metadata["language_score"] = lang, score
        self.stat_update(f"lang_{lang}")  # every document's language, kept or not, for the report
        if (self.languages and lang not in self.languages) or score <= self.threshold:
            return False, "language"
        return True
