"""The heuristic filters as one datatrove block: split words once, apply each filter in order.

Each document is judged with the thresholds of its own language (`metadata["language"]` from the
language filter), so one run over mixed English/German input applies English rules to English
pages and FineWeb-2's German rules to German ones. Drop reasons are "<filter>/<rule>", e.g.
"gopher_repetition/top_2_gram". The C4 filter removes failing lines from the text it keeps, so the
filters after it judge the shortened text, as in datatrove's FineWeb pipeline order.
"""

from collections.abc import Sequence

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from lmforge.curate.c4 import c4_lines
from lmforge.curate.fineweb import fineweb_quality
from lmforge.curate.gopher import gopher_quality, gopher_repetition
from lmforge.curate.presets import FILTERS, thresholds
from lmforge.curate.words import split_words
from lmforge.errors import ConfigError

# the rules per filter name; their keyword-only arguments are the thresholds a recipe may override
CHECKS = {
    "gopher_repetition": gopher_repetition,
    "gopher_quality": gopher_quality,
    "c4": c4_lines,
    "fineweb": fineweb_quality,
}


class HeuristicFilters(BaseFilter):
    name = "📏 Heuristic filters"

    def __init__(
        self,
        filters: Sequence[str] = FILTERS,
        overrides: dict | None = None,
        default_language: str = "en",
        exclusion_writer: DiskWriter | None = None,
    ):
        super().__init__(exclusion_writer)
        unknown = sorted(set(filters) - set(FILTERS))
        if unknown:
            raise ConfigError(f"unknown filter(s) {unknown}; choose from {list(FILTERS)}")
        self.filters, self.overrides, self.default_language = list(filters), overrides or {}, default_language
        self._presets: dict[str, dict] = {}

    def preset(self, language: str) -> dict:
        """The language's thresholds; a language without its own falls back to the default language's
        (the stage refuses to start when a kept language has none, see stage.py)."""
        if language not in self._presets:
            self._presets[language] = thresholds(language, self.overrides) or thresholds(
                self.default_language, self.overrides
            )
        return self._presets[language]

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        preset = self.preset(doc.metadata.get("language", self.default_language))
        words = None
        for name in self.filters:
            if preset[name] is None:  # this language's pipeline does not run it
                continue
            if name == "c4":
                text, reason = CHECKS[name](doc.text, **preset[name])
                if text != doc.text:
                    # C4 also re-joins lines; only a removed line or citation changes the words
                    if words is not None and text.split() != doc.text.split():
                        words = None
                    doc.text = text
            else:
                words = split_words(doc.text) if words is None else words
                reason = CHECKS[name](doc.text, words, **preset[name])
            if reason:
                return False, f"{name}/{reason}"
        return True
