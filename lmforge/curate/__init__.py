"""Data curation (issue #3, in progress): datatrove pipeline blocks lmforge adds. So far: offline
language identification, PII redaction, exact and MinHash-LSH near dedup; the `curate` stage
that wires them into a run with accounting is not built yet."""

from lmforge.curate.dedup import ExactDedup, MinHashDedup
from lmforge.curate.language import OfflineLanguageFilter, identify
from lmforge.curate.pii import RedactPII, redact

__all__ = ["ExactDedup", "MinHashDedup", "OfflineLanguageFilter", "RedactPII", "identify", "redact"]
