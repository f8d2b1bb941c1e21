"""Checkpoints: Hugging Face folders plus the state needed to resume exactly.

    checkpoints/step-000100/
        config.json, generation_config.json, model.safetensors   <- AutoModelForCausalLM loads these
        tokenizer.json, tokenizer_config.json, ...                 <- AutoTokenizer loads these
        trainer_state.json   step, samples and tokens seen, last loss (human-readable)
        resume_state.pt      optimizer state and RNG states (torch.load(weights_only=True))
    checkpoints/latest       name of the newest complete checkpoint

A checkpoint is written into a hidden temp folder and renamed into place, and `latest` is
updated only after that, so a crash mid-write never leaves a half checkpoint that resume
would pick up. Weights are read back with safetensors only.
"""

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from lmforge.errors import CheckpointError
from lmforge.models.runs import latest_checkpoint
from lmforge.rundir.files import atomic_write_text, written_aside

FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt"}


def checkpoint_steps(max_steps: int, every: int, log_spaced: bool) -> set[int]:
    """Steps that get a checkpoint: every `every`, the last, and 0, 1, 2, 4, 8 ... (Pythia-style)."""
    steps = set(range(every, max_steps + 1, every)) | {max_steps}
    if log_spaced:
        steps.add(0)
        k = 1
        while k < max_steps:
            steps.add(k)
            k *= 2
    return steps


def tied_names(model: torch.nn.Module) -> set[str]:
    """Names under which a parameter appears a second time (an output layer tied to the embeddings)."""
    seen, tied = set(), set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            tied.add(name)
        seen.add(id(p))
    return tied


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:06d}"


def save_checkpoint(
    root: Path, step: int, raw_model, wrapped, optimizer, state: dict, tokenizer_dir: Path | None, is_main: bool
) -> Path:
    """Gather full state (collective: every rank must call) and write it from rank 0."""
    model_sd = get_model_state_dict(wrapped, options=FULL)
    for name in tied_names(raw_model):  # gathered copies of tied weights: keep the one HF stores
        model_sd.pop(name, None)
    optim_sd = get_optimizer_state_dict(wrapped, optimizer, options=FULL)
    final = step_dir(root, step)
    if not is_main:
        return final
    with written_aside(final) as tmp:
        raw_model.save_pretrained(tmp, state_dict=model_sd, safe_serialization=True)
        if tokenizer_dir and tokenizer_dir.is_dir():  # may be a whole model folder (continued pretraining):
            for f in tokenizer_dir.iterdir():  # take its tokenizer files, never its weights or config
                if f.is_file() and not (tmp / f.name).exists() and f.suffix not in WEIGHT_SUFFIXES:
                    shutil.copy2(f, tmp / f.name)
        resume = {
            "optimizer": optim_sd,
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        torch.save(resume, tmp / "resume_state.pt")
        (tmp / "trainer_state.json").write_text(json.dumps({"step": step, **state}, indent=2) + "\n")
    current = latest_checkpoint(root)
    if current is None or int(current.name.split("-")[1]) <= step:
        atomic_write_text(root / "latest", final.name + "\n")
    return final


def load_model_weights(raw_model: torch.nn.Module, ckpt: Path) -> None:
    """Load safetensors weights into an unwrapped model (before DDP/FSDP wrapping)."""
    files = sorted(ckpt.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{ckpt}: no .safetensors weights")
    sd = {}
    for f in files:
        sd.update(load_file(f))
    missing, unexpected = raw_model.load_state_dict(sd, strict=False)
    # tied output weights are stored once; anything else missing is a real mismatch
    missing = [k for k in missing if not (k == "lm_head.weight" and raw_model.config.tie_word_embeddings)]
    if missing or unexpected:
        raise CheckpointError(
            f"{ckpt}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


def load_resume_state(ckpt: Path, wrapped, optimizer) -> dict:
    """Restore optimizer and RNG state; returns trainer_state.json (step, samples, tokens ...)."""
    resume = torch.load(ckpt / "resume_state.pt", map_location="cpu", weights_only=True)
    set_optimizer_state_dict(wrapped, optimizer, optim_state_dict=resume["optimizer"], options=FULL)
    torch.set_rng_state(resume["cpu_rng"])
    if torch.cuda.is_available() and resume["cuda_rng"]:
        torch.cuda.set_rng_state_all(resume["cuda_rng"])
    return json.loads((ckpt / "trainer_state.json").read_text())
