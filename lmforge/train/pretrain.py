"""`lmforge pretrain` (and each phase of `adapt`): what next-token training adds to the training
core (loop.py): a model built from the recipe or continued from a folder, packed token windows
drawn from a seeded mixture, the next-token loss, validation loss, and Pythia-style checkpoints
that are plain HF folders.

Everything that decides the result (initial weights, sample order, learning rate) is a pure
function of the seed and the step, and the rest (optimizer moments, RNG) is in every checkpoint,
which is why a killed run resumes bit-identically on CPU.
"""

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from typing_extensions import NotRequired, TypedDict

from lmforge.data import PackedTokens
from lmforge.errors import ConfigError
from lmforge.eval.during import eval_hook
from lmforge.models import latest_checkpoint, load_causal_lm
from lmforge.recipe import ModelConfig, TrainConfig
from lmforge.rundir import record_stage
from lmforge.train import loop
from lmforge.train.checkpoint import (
    checkpoint_steps,
    load_model_weights,
    load_resume_state,
    save_checkpoint,
)
from lmforge.train.distributed import barrier, mean_across, setup_distributed, wrap_model
from lmforge.train.documents import positions_after_eos, use_attention
from lmforge.train.figures import efficiency
from lmforge.train.fused_loss import cross_entropy
from lmforge.train.mixture import Mixture
from lmforge.train.model import build_model, count_params, flops_per_token, hf_config
from lmforge.train.optim import make_optimizer
from lmforge.train.precision import use_bf16
from lmforge.train.pretrain_report import write_pretrain_report
from lmforge.train.schedule import lr_at
from lmforge.train.trackers import stage_metrics


def next_token_logits(fwd, inputs: torch.Tensor, eos_id: int | None) -> torch.Tensor:
    """Logits for a batch of windows; with `eos_id` (train.document_mask) each EOS-separated
    document attends only to itself and its positions start at 0 (lmforge/train/documents.py)."""
    positions = positions_after_eos(inputs, eos_id) if eos_id is not None else None
    return fwd(input_ids=inputs, position_ids=positions, use_cache=False).logits  # training keeps no KV cache


@torch.no_grad()
def evaluate(fwd, data: PackedTokens, cfg: TrainConfig, d, autocast, eos_id: int | None) -> float:
    """Mean loss over the first `eval_batches` micro-batches of the validation set (fixed windows)."""
    fwd.eval()
    n = min(len(data), cfg.eval_batches * cfg.micro_batch_size)
    mine = list(range(d.rank, n, d.world)) or [0]
    total = torch.zeros((), device=d.device)
    for i in range(0, len(mine), cfg.micro_batch_size):
        batch = torch.from_numpy(data.batch(mine[i : i + cfg.micro_batch_size])).to(d.device)
        with autocast:
            logits = next_token_logits(fwd, batch[:, :-1], eos_id)
        total += F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten(), reduction="sum")
    fwd.train()
    return mean_across(total / (len(mine) * cfg.seq_len), d).item()


class PretrainResult(TypedDict):
    steps: int
    tokens: int
    params: int
    final_loss: float
    interrupted: bool  # SIGTERM: checkpointed at the step's end, rerun to resume
    checkpoint: str
    flops_per_token: float
    precision: str
    samples_per_source: dict[str, int]
    tok_per_s: float  # this run's tokens per second (windows have no padding)
    padding_share: float
    peak_memory_gib: float  # rank 0's peak (CUDA: allocated; CPU: resident set)
    settings: dict  # rows (document masks or not), attention kernel, activation checkpointing, fsdp
    model: NotRequired[object]  # returned (the in-memory model, for callers and tests), not recorded


def pretrain(model_cfg: ModelConfig, cfg: TrainConfig, run_dir: str | Path, seed: int) -> PretrainResult:
    """Train (or resume) a model in `run_dir`; returns a summary of the run and the trained model."""
    started = time.time()
    run_dir = Path(run_dir)
    d = setup_distributed(cfg.threads)

    source_dirs = {n: Path(p) for n, p in cfg.sources.items()} or {
        "train": Path(cfg.data) if cfg.data else run_dir / "tokens" / "train"
    }
    val_dir = Path(cfg.val_data) if cfg.val_data else run_dir / "tokens" / "val"
    sources = {n: PackedTokens(p, cfg.seq_len) for n, p in source_dirs.items()}
    val_data = PackedTokens(val_dir, cfg.seq_len) if (val_dir / "meta.json").exists() else None
    meta = next(iter(sources.values())).meta
    if len({(s.meta["vocab_size"], s.meta.get("tokenizer")) for s in sources.values()}) > 1:
        raise ConfigError("train.sources were tokenized with different tokenizers")
    tokenizer_dir = Path(meta.get("tokenizer") or run_dir / "tokenizer")

    bf16 = use_bf16(cfg.precision, d.device)
    precision = "bf16" if bf16 else "fp32"
    if cfg.fsdp and d.world == 1:
        raise ConfigError("train.fsdp needs several processes: launch with torchrun or set train.nproc_per_node")
    if cfg.init_from:  # continued pretraining: the folder's architecture and weights, in fp32
        raw = load_causal_lm(cfg.init_from, dtype=torch.float32)  # transformers picks SDPA where the family has it
        config = raw.config
        if config.vocab_size < meta["vocab_size"]:
            raise ConfigError(
                f"train.init_from: model has {config.vocab_size} token embeddings, the data uses {meta['vocab_size']}"
            )
    else:
        config = hf_config(model_cfg, meta["vocab_size"], cfg.seq_len, meta["eos_id"], _pad_id(tokenizer_dir))
        raw = build_model(config, seed)
    ckpt_root = run_dir / "checkpoints"
    resume_from = latest_checkpoint(ckpt_root) if cfg.resume else None
    if resume_from:
        load_model_weights(raw, resume_from)
    raw.to(d.device)
    attention, loaded_attention = use_attention(raw, cfg.attention, d.device, packed=cfg.document_mask)
    eos_id = meta["eos_id"] if cfg.document_mask else None
    wrapped = wrap_model(raw, d, cfg.fsdp, bf16, cfg.activation_checkpointing)
    fwd = torch.compile(wrapped) if cfg.compile else wrapped
    optimizer = make_optimizer(raw, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), cfg.eps, cfg.embedding_lr_scale)
    mb = cfg.micro_batch_size
    start = loop.Position()
    if resume_from:
        saved = load_resume_state(resume_from, wrapped, optimizer)
        start = loop.Position(saved["step"], saved["samples"] // mb, saved["tokens"])

    n_params = count_params(raw)
    n_non_embed = count_params(raw, exclude_embeddings=True)
    fpt = flops_per_token(config, n_non_embed, cfg.seq_len)
    mixture = Mixture(sources, cfg.mix or {n: 1.0 for n in sources}, seed)
    global_batch = mb * cfg.grad_accum * d.world
    save_at = checkpoint_steps(cfg.max_steps, cfg.checkpoint_every, cfg.log_spaced_checkpoints)
    autocast = torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=bf16 and not cfg.fsdp)
    recorded = {"model": model_cfg.model_dump(), "train": cfg.model_dump()}
    metrics = stage_metrics(run_dir, cfg, "pretrain", recorded, is_main=d.is_main)

    def checkpoint(at: loop.Position, last: dict) -> Path:
        state = {"samples": at.micro_batches * mb, "tokens": at.tokens, "loss": last.get("loss")}
        return save_checkpoint(ckpt_root, at.step, raw, wrapped, optimizer, state, tokenizer_dir, d.is_main)

    def batch(index: int) -> torch.Tensor:  # micro-batch `index` holds global samples index * mb onwards
        return torch.from_numpy(mixture.batch(index * mb, mb)).to(d.device, non_blocking=True)

    def next_token_loss(batch: torch.Tensor) -> loop.Out:
        logits = next_token_logits(fwd, batch[:, :-1], eos_id)
        return loop.Out(
            cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten()), {}, batch[:, 1:].numel(), len(batch)
        )

    during = eval_hook(cfg, lambda: raw, _tokenizer(tokenizer_dir, cfg), run_dir / "eval_during", d, cfg.max_steps)

    def validate(step: int) -> dict | None:
        row = {}
        if val_data is not None and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            row["val_loss"] = evaluate(fwd, val_data, cfg, d, autocast, eos_id)
        if during:
            row |= during(step) or {}
        return row or None

    if start.step == 0 and 0 in save_at:
        checkpoint(start, {})
    if d.is_main:
        msg = f"resuming from {resume_from.name}" if resume_from else "starting from scratch"
        windows = sum(len(s) for s in sources.values())
        print(
            f"pretrain: {n_params / 1e6:.2f}M params, {windows} windows of {cfg.seq_len} tokens, "
            f"{global_batch * cfg.seq_len} tokens/step, {precision} on {d.device.type}, {msg}",
            flush=True,
        )
    job = loop.Job(
        name="pretrain",
        steps=cfg.max_steps,
        grad_accum=cfg.grad_accum,
        lr_at=lambda step: lr_at(step, cfg),
        batch=batch,
        loss=next_token_loss,
        clip=cfg.grad_clip,
        log_every=cfg.log_every,
        save_at=save_at.__contains__,
        save=checkpoint,
        evaluate=validate,
        flops_per_token=fpt,
        autocast_dtype=torch.bfloat16 if bf16 and not cfg.fsdp else None,
    )
    done = loop.run(job, wrapped, optimizer, d, start, metrics.log if metrics else None)
    raw.set_attn_implementation(loaded_attention)  # the returned model generates and evaluates
    step, interrupted = done.position.step, done.interrupted
    last_loss = done.last.get("loss") if done.last else None
    if last_loss is None and resume_from:
        last_loss = json.loads((resume_from / "trainer_state.json").read_text()).get("loss")
    barrier(d)
    summary = {
        "steps": step,
        "tokens": done.position.tokens,
        "params": n_params,
        "final_loss": last_loss,
        "interrupted": interrupted,
        "checkpoint": str(latest_checkpoint(ckpt_root) or ""),
        "flops_per_token": fpt,
        "precision": precision,
        "samples_per_source": mixture.counts(),
        **efficiency(done, cfg, attention, _rows(cfg)),
    }
    if d.is_main:
        metrics.close()  # and the trackers
        if interrupted:
            print(f"pretrain: stopped by SIGTERM at step {step}; checkpoint saved, rerun to resume", flush=True)
        else:
            record_stage(
                run_dir,
                "pretrain",
                {
                    "model": model_cfg.model_dump(),
                    "train": cfg.model_dump(),
                    "world_size": d.world,
                    "hf_config": config.to_dict(),
                },
                [*source_dirs.values(), *([cfg.init_from] if cfg.init_from else [])],
                seed,
                started,
                summary,
            )
            write_pretrain_report(run_dir, summary, config, cfg, d.world)
    return {**summary, "model": raw}  # the in-memory model, for callers and tests; not in the manifest


def _rows(cfg: TrainConfig) -> str:
    masked = "with document masks" if cfg.document_mask else "attending across document boundaries"
    return f"windows of {cfg.seq_len} tokens {masked}"


def _tokenizer(tokenizer_dir: Path, cfg: TrainConfig):
    """The tokenizer evaluations during training need (None when none are asked for)."""
    if not cfg.eval_tasks and not cfg.eval_bpb:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir))


def _pad_id(tokenizer_dir: Path) -> int | None:
    """The tokenizer's pad id goes into the model config so generation pads correctly."""
    if not (tokenizer_dir / "tokenizer.json").exists():
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir)).pad_token_id
