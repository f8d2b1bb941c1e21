"""metrics.jsonl: append-only, one JSON object per line, every line tagged with its stage."""

import json
from pathlib import Path
from typing import Any


class MetricsWriter:
    """Appends metric rows; flushes each line so a killed run keeps everything it logged."""

    def __init__(self, run_dir: str | Path, stage: str, mirror=None):
        """`mirror`: anything with `log(step, values)` and `close()` (the experiment trackers), given
        every row's numbers that have a step."""
        self.stage = stage
        self.mirror = mirror
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self._f = open(Path(run_dir) / "metrics.jsonl", "a", encoding="utf-8")

    def log(self, **row: Any) -> None:
        self._f.write(json.dumps({"stage": self.stage, **row}) + "\n")
        self._f.flush()
        if self.mirror is not None and "step" in row:
            numbers = {
                k: v for k, v in row.items() if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
            }
            self.mirror.log(row["step"], numbers)

    def close(self) -> None:
        self._f.close()
        if self.mirror is not None:
            self.mirror.close()


def read_metrics(run_dir: str | Path, stage: str | None = None) -> list[dict[str, Any]]:
    """All rows (of one stage, if given). A resumed run logs some steps twice; callers keep the last."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if stage is None or r.get("stage") == stage]
