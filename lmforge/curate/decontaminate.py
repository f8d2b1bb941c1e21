"""Drop documents that contain an evaluation item (its word n-grams; lmforge/text/ngrams.py), so a
benchmark the run will be scored on never enters its training data. Counted under the reason
"contaminated" in the accounting; each dropped document names the items it held."""

import glob

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from lmforge.decontaminate import eval_items
from lmforge.errors import ConfigError
from lmforge.text.ngrams import NgramIndex


def task_specs(patterns: list[str]) -> list[str]:
    """Task spec files from paths or globs; a pattern matching nothing is an error, not a no-op."""
    out = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if not found:
            raise ConfigError(f"curate.decontaminate: {pattern!r} matches no task spec")
        out += [f for f in found if f.endswith((".toml", ".yaml", ".yml"))]
    return out


class DropContaminated(BaseFilter):
    name = "🧪 Decontaminate"

    def __init__(
        self, tasks: list[str], ngram: int = 13, min_ngram: int = 6, exclusion_writer: DiskWriter | None = None
    ):
        super().__init__(exclusion_writer)
        keys, texts = eval_items(tasks)
        self.index = NgramIndex(keys, texts, ngram, min_ngram)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        hits = self.index.matches(doc.text)
        if not hits:
            return True
        doc.metadata["contaminated"] = [f"{self.index.keys[i][0]}#{self.index.keys[i][1]}" for i in sorted(hits)]
        return False, "contaminated"
