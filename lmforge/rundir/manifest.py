"""manifest.json: one per run directory, updated by every stage that runs in it."""

import json
import time
from pathlib import Path
from typing import Any

from lmforge.rundir.environment import code_commit, hardware, package_versions
from lmforge.rundir.files import atomic_write_text, fingerprint


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def record_stage(
    run_dir: str | Path,
    stage: str,
    config: dict[str, Any],
    inputs: list[str | Path],
    seed: int | None,
    started: float,
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add (or replace) one stage's entry and refresh the run-wide facts; returns the manifest.

    `config` is the resolved config of that stage; `inputs` are fingerprinted so a later reader
    can tell whether the data it sees is the data this run used.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    manifest.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)))
    manifest["code_commit"] = code_commit()
    manifest["versions"] = package_versions()
    manifest["hardware"] = hardware()
    manifest.setdefault("config", {})[stage] = config
    if seed is not None:
        manifest.setdefault("seeds", {})[stage] = seed
    manifest.setdefault("inputs", {})[stage] = [fingerprint(p) for p in inputs if Path(p).exists()]
    stages = manifest.setdefault("stages", {})
    stages.pop(stage, None)  # re-insert so the order shows the last run order
    stages[stage] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_s": round(time.time() - started, 3),
        **(summary or {}),
    }
    atomic_write_text(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest
