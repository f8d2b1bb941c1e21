"""provenance.json: everything a stranger needs to check a release and rebuild it (code commit,
resolved recipe, every input's fingerprint, seeds, data order, checkpoints with hashes, library
versions, hardware, timings), and the sha256 of every file in the release, which
`lmforge release --verify DIR` checks."""

import json
from pathlib import Path

from lmforge.errors import LmforgeError
from lmforge.rundir import sha256_file
from lmforge.rundir.environment import package_versions

PROVENANCE = "provenance.json"


def is_release(folder: Path) -> bool:
    return (folder / PROVENANCE).is_file()


def rehash_release(root: Path) -> None:
    """Files were added to a release (GGUF exports): list their hashes so that `--verify` holds."""
    path = root / PROVENANCE
    prov = json.loads(path.read_text())
    prov["files"] = release_files(root)
    path.write_text(json.dumps(prov, indent=1, ensure_ascii=False) + "\n")


def release_files(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file in the release except provenance.json itself."""
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != PROVENANCE
    }


def data_order(manifest: dict) -> dict:
    """How to rebuild the batch at any pretraining step (Pythia's batch viewer, as a recipe)."""
    train = manifest.get("config", {}).get("pretrain", {}).get("train", {})
    if not train:
        return {}
    return {
        "algorithm": "epoch e is numpy.random.default_rng([seed, e]).permutation(num_windows); global sample g "
        "is window perm[g % num_windows] of epoch g // num_windows (lmforge/train/data_order.py)",
        "seed": manifest.get("seeds", {}).get("pretrain"),
        "window_tokens": train.get("seq_len"),
        "samples_per_step": train.get("micro_batch_size", 0)
        * train.get("grad_accum", 1)
        * train.get("nproc_per_node", 1),
        "step_s_samples": "step s (from 0) reads global samples s*samples_per_step ... (s+1)*samples_per_step-1",
        "token_shards": manifest.get("inputs", {}).get("pretrain", []),
    }


def write_provenance(root: Path, manifest: dict, recipe: dict, checkpoints: list[dict], extra: dict) -> dict:
    prov = {
        "format": "lmforge-provenance-v1",
        "code_commit": manifest.get("code_commit", "unknown"),
        "recipe": recipe,
        "inputs": manifest.get("inputs", {}),
        "seeds": manifest.get("seeds", {}),
        "data_order": data_order(manifest),
        "checkpoints": checkpoints,
        "versions": {**manifest.get("versions", {}), **package_versions()},
        "hardware": manifest.get("hardware", {}),
        "timings": {
            name: {"started": s.get("started"), "wall_s": s.get("wall_s")}
            for name, s in manifest.get("stages", {}).items()
        },
        "eval_harness": {"lmforge": package_versions().get("lmforge"), "lm-eval": package_versions().get("lm-eval")},
        **extra,
        "files": release_files(root),
    }
    (root / PROVENANCE).write_text(json.dumps(prov, indent=1, ensure_ascii=False) + "\n")
    return prov


def verify_release(root: str | Path) -> dict:
    """Re-hash every file; raises naming the first changed, missing or unlisted file."""
    root = Path(root)
    path = root / PROVENANCE
    if not path.is_file():
        raise LmforgeError(f"{root}: no {PROVENANCE} (not an lmforge release)")
    listed = json.loads(path.read_text()).get("files", {})
    found = release_files(root)
    for rel, digest in listed.items():
        if rel not in found:
            raise LmforgeError(f"{root / rel}: missing (listed in {PROVENANCE})")
        if found[rel] != digest:
            raise LmforgeError(f"{root / rel}: changed (sha256 {found[rel][:16]}…, {PROVENANCE} says {digest[:16]}…)")
    extra = sorted(set(found) - set(listed))
    if extra:
        raise LmforgeError(
            f"{root / extra[0]}: not listed in {PROVENANCE}" + (f" (+{len(extra) - 1} more)" if len(extra) > 1 else "")
        )
    return {"files": len(listed), "verified": True}
