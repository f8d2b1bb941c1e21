"""Data curation (issue #3, in progress): datatrove pipeline blocks lmforge adds. So far: offline
language identification and PII redaction; the `curate` stage that wires them is not built yet."""

from lmforge.curate.language import OfflineLanguageFilter, identify
from lmforge.curate.pii import RedactPII, redact

__all__ = ["OfflineLanguageFilter", "RedactPII", "identify", "redact"]
