"""Decontamination: which evaluation items a run's training data contains (word n-gram overlap),
per task and per training source; the index curate drops contaminated documents with, and the
item lists `eval --exclude-contaminated` scores without."""

from lmforge.decontaminate.items import eval_items
from lmforge.decontaminate.sources import training_sources
from lmforge.decontaminate.stage import contaminated_items, run_decontaminate

__all__ = ["contaminated_items", "eval_items", "run_decontaminate", "training_sources"]
