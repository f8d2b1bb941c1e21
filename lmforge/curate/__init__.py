"""Data curation: raw text -> clean, language-tagged, deduplicated JSONL shards (`lmforge curate`).

datatrove pipeline blocks (readers that account for bad input, ftfy/NFC, offline language ID,
Gopher/C4/FineWeb heuristics with en/de presets, a fastText quality classifier, PII redaction,
exact and MinHash-LSH dedup) run by datatrove's executors; see stage.py for the pipeline."""

from lmforge.curate.dedup import ExactDedup, MinHashDedup
from lmforge.curate.language import OfflineLanguageFilter
from lmforge.curate.pii import RedactPII, redact
from lmforge.curate.quality_classifier import train_quality_classifier
from lmforge.curate.quality_filters import HeuristicFilters
from lmforge.curate.stage import run_curate_stage

__all__ = [
    "ExactDedup",
    "HeuristicFilters",
    "MinHashDedup",
    "OfflineLanguageFilter",
    "RedactPII",
    "redact",
    "run_curate_stage",
    "train_quality_classifier",
]
