"""Resume state of a tuning run (sft, dpo): what a killed run needs to continue exactly.

    <stage>/resume/trainable.safetensors   the trainable weights (all of them, or the adapter's)
    <stage>/resume/optimizer.pt            optimizer moments and the RNG state (weights_only load)
    <stage>/resume/state.json              the step reached, and the tag of what was being trained

Written aside and renamed in, so a kill mid-write leaves the previous state. The tag names the
model, data and settings: a rerun with different ones refuses instead of mixing two runs. The
batch order is a pure function of the seed, so the rerun skips the micro-batches already taken.
"""

import hashlib
import json
from pathlib import Path

import torch

from lmforge.errors import DataError
from lmforge.rundir import written_aside


def resume_tag(data_fingerprint: str, cfg, seed: int) -> str:
    """What a resume state belongs to: the data, every setting of the stage's block, the seed."""
    return hashlib.sha256(f"{data_fingerprint}:{cfg.model_dump_json()}:{seed}".encode()).hexdigest()


def trainable(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_resume(folder: Path, model, optimizer, step: int, tag: str) -> None:
    """Trainable weights (safetensors), optimizer state and step; written aside, then renamed in."""
    from safetensors.torch import save_file

    with written_aside(folder) as tmp:
        save_file(trainable(model), tmp / "trainable.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}, tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, "tag": tag}))


def load_resume(folder: Path, model, optimizer, tag: str, section: str) -> int:
    """The step to continue from (0 when there is nothing to resume)."""
    if not (folder / "state.json").is_file():
        return 0
    saved = json.loads((folder / "state.json").read_text())
    if saved["tag"] != tag:
        raise DataError(
            f"{folder}: a killed run with another model, data or settings; delete it to start over "
            f"(or set {section}.resume = false)"
        )
    from safetensors.torch import load_file

    weights = load_file(folder / "trainable.safetensors")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    state = torch.load(folder / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    return saved["step"]
