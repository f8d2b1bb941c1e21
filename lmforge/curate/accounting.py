"""Every document accounted for: read = kept + dropped, with a reason for each drop.

Counts come from datatrove's own per-step stats (merged over tasks by the executor into
`<logs>/stats.json`): the bad-input step's `total` is every record the readers produced, each
dropping step reports `dropped_<reason>`, and the last probe counts what was written. Length and
language histograms come from `LengthProbe` steps placed after reading and before writing.
"""

import json
import math
from collections import Counter
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from lmforge.curate.readers import RejectBadInput
from lmforge.errors import DataError

# length histogram bins: 4 per octave from 1 character to 32M characters
BINS = [2 ** (k / 4) for k in range(4 * 25 + 1)]


def length_bin(n: int) -> int:
    return 0 if n < 1 else min(len(BINS) - 2, int(4 * math.log2(n)))


class LengthProbe(PipelineStep):
    """Passes documents through unchanged; writes their length histogram and languages per task."""

    name = "📐 length probe"
    type = "📊 - STATS"

    def __init__(self, stats_dir: str, tag: str):
        super().__init__()
        self.stats_dir, self.tag = stats_dir, tag

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        counts, languages, docs = [0] * (len(BINS) - 1), Counter(), 0
        for doc in data:
            docs += 1
            counts[length_bin(len(doc.text))] += 1
            languages[doc.metadata.get("language", "unknown")] += 1
            yield doc
        path = Path(self.stats_dir) / f"{self.tag}_{rank:05d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"documents": docs, "length_bins": counts, "languages": languages}))


def read_probe(stats_dir: Path, tag: str) -> dict:
    """The probe's histograms summed over tasks."""
    bins, languages, docs = [0] * (len(BINS) - 1), Counter(), 0
    for path in sorted(stats_dir.glob(f"{tag}_*.json")):
        part = json.loads(path.read_text())
        docs += part["documents"]
        bins = [a + b for a, b in zip(bins, part["length_bins"])]
        languages.update(part["languages"])
    return {"documents": docs, "length_bins": bins, "languages": dict(languages)}


def step_stats(logging_dir: Path) -> list[dict]:
    """datatrove's merged per-step stats of one executor run: [{"name", "stats": {key: total}}]."""
    path = logging_dir / "stats.json"
    if not path.exists():
        raise DataError(f"{path}: no stats yet (has the curate job finished?)")
    return [
        {"name": s["name"], "stats": {k: (v["total"] if isinstance(v, dict) else v) for k, v in s["stats"].items()}}
        for s in json.loads(path.read_text())
    ]


def _summed(steps: list[dict], prefix: str) -> dict[str, int]:
    """Stats named `<prefix><key>` summed over steps, by key (drop reasons, languages, PII kinds)."""
    out: dict[str, int] = {}
    for s in steps:
        for name, value in s["stats"].items():
            if name.startswith(prefix):
                out[name.removeprefix(prefix)] = out.get(name.removeprefix(prefix), 0) + int(value)
    return out


def account(phases: list[Path], stats_dir: Path) -> dict:
    """Read, kept, dropped per step and reason, and whether they balance."""
    steps = [s for logging_dir in phases for s in step_stats(logging_dir)]
    read = int(next(s["stats"].get("total", 0) for s in steps if s["name"].endswith(RejectBadInput.name)))
    dropped = _summed(steps, "dropped_")
    kept = read_probe(stats_dir, "kept")
    return {
        "read": read,
        "kept": kept["documents"],
        "dropped": dict(sorted(dropped.items(), key=lambda kv: -kv[1])),
        "balanced": read == kept["documents"] + sum(dropped.values()),
        "languages_detected": _summed(steps, "lang_"),
        "languages_kept": kept["languages"],
        "pii_redacted": _summed(steps, "redacted_"),
        "length_bins": {"read": read_probe(stats_dir, "read")["length_bins"], "kept": kept["length_bins"]},
    }
