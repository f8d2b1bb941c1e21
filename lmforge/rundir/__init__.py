"""The run directory every stage reads from and writes to.

Layout of a run directory:
    manifest.json      config, code commit, input fingerprints, seeds, versions, hardware, timings
    metrics.jsonl      one JSON object per logged event, tagged with its stage
    report.md          one section per stage, rebuilt from report/<stage>.md
    plots/*.png        figures referenced from report.md
    tokenizer/ tokens/ checkpoints/   the stages' own outputs
"""

from lmforge.rundir.files import atomic_write_text, fingerprint, sha256_file, user_cache_dir, written_aside
from lmforge.rundir.manifest import record_stage
from lmforge.rundir.metrics import MetricsWriter, read_metrics
from lmforge.rundir.report import write_report_section

__all__ = [
    "MetricsWriter",
    "atomic_write_text",
    "fingerprint",
    "read_metrics",
    "record_stage",
    "sha256_file",
    "user_cache_dir",
    "write_report_section",
    "written_aside",
]
