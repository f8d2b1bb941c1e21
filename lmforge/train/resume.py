"""Resume state of a tuning run (sft, dpo): what a killed run needs to continue exactly.

    <stage>/resume/trainable.safetensors   the trainable weights (all of them, or the adapter's)
    <stage>/resume/optimizer.pt            optimizer moments and every rank's RNG state (weights_only load)
    <stage>/resume/state.json              the position reached, and the tag of what was being trained

Gathered from every rank (DDP or FSDP2) and written by rank 0 aside, then renamed in, so a kill
mid-write leaves the previous state. The tag names the model, data, settings and world size: a
rerun with different ones refuses instead of mixing two runs. The batch order is a pure function
of the seed and the position, so the rerun reads on from where the killed one was.
"""

import hashlib
import json
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from lmforge.errors import DataError
from lmforge.rundir import written_aside
from lmforge.train.checkpoint import FULL
from lmforge.train.distributed import Dist
from lmforge.train.loop import Position

TRAINABLE = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)


def resume_tag(data_fingerprint: str, cfg, seed: int, world: int = 1) -> str:
    """What a resume state belongs to: the data, every setting of the stage's block, the seed, the
    number of processes (which sets the number of steps)."""
    return hashlib.sha256(f"{data_fingerprint}:{cfg.model_dump_json()}:{seed}:{world}".encode()).hexdigest()


def save_resume(folder: Path, raw, wrapped, optimizer, pos: Position, tag: str, d: Dist) -> None:
    """Collective: every rank calls it; rank 0 writes."""
    weights = get_model_state_dict(wrapped, options=TRAINABLE)
    optim = get_optimizer_state_dict(wrapped, optimizer, options=FULL)
    rngs = [None] * d.world
    if d.world > 1:
        dist.all_gather_object(rngs, torch.get_rng_state())
    else:
        rngs = [torch.get_rng_state()]
    if not d.is_main:
        return
    from safetensors.torch import save_file

    names = {n for n, p in raw.named_parameters() if p.requires_grad}  # tied weights once
    with written_aside(folder) as tmp:
        save_file({k: v.contiguous() for k, v in weights.items() if k in names}, tmp / "trainable.safetensors")
        torch.save({"optimizer": optim, "rng": rngs}, tmp / "optimizer.pt")
        state = {"step": pos.step, "micro_batches": pos.micro_batches, "tokens": pos.tokens, "tag": tag}
        (tmp / "state.json").write_text(json.dumps(state))


def load_resume_weights(folder: Path, raw, tag: str, section: str) -> Position:
    """Load the trainable weights into the unwrapped model; the position to continue from
    (step 0 when there is nothing to resume)."""
    if not (folder / "state.json").is_file():
        return Position()
    saved = json.loads((folder / "state.json").read_text())
    if saved["tag"] != tag:
        raise DataError(
            f"{folder}: a killed run with another model, data, settings or number of processes; delete it "
            f"to start over (or set {section}.resume = false)"
        )
    from safetensors.torch import load_file

    weights = load_file(folder / "trainable.safetensors")
    params = dict(raw.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    return Position(saved["step"], saved["micro_batches"], saved["tokens"])


def load_resume_optimizer(folder: Path, wrapped, optimizer, d: Dist) -> None:
    """Optimizer moments (into the wrapped model's optimizer) and this rank's RNG state."""
    state = torch.load(folder / "optimizer.pt", weights_only=True)
    set_optimizer_state_dict(wrapped, optimizer, optim_state_dict=state["optimizer"], options=FULL)
    torch.set_rng_state(state["rng"][d.rank])
