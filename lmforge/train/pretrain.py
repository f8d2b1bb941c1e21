"""`lmforge pretrain`: the training loop, readable top to bottom (nanoGPT-style).

One optimizer step = `grad_accum` micro-batches on each of `world` processes. Everything that
decides the result (initial weights, sample order, learning rate) is a pure function of the
seed and the step, and the rest (optimizer moments, RNG) is in every checkpoint, which is
why a killed run resumes bit-identically on CPU.
"""

import contextlib
import signal
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typing_extensions import NotRequired, TypedDict

from lmforge.data import PackedTokens
from lmforge.errors import ConfigError
from lmforge.models import latest_checkpoint, load_causal_lm
from lmforge.recipe import ModelConfig, TrainConfig
from lmforge.rundir import MetricsWriter, record_stage
from lmforge.train.checkpoint import (
    checkpoint_steps,
    load_model_weights,
    load_resume_state,
    save_checkpoint,
)
from lmforge.train.data_order import DataOrder
from lmforge.train.distributed import (
    any_across,
    barrier,
    mean_across,
    setup_distributed,
    teardown_distributed,
    wrap_model,
)
from lmforge.train.fused_loss import cross_entropy
from lmforge.train.mixture import Mixture
from lmforge.train.model import build_model, count_params, flops_per_token, hf_config
from lmforge.train.precision import use_bf16
from lmforge.train.pretrain_report import write_pretrain_report
from lmforge.train.schedule import lr_at
from lmforge.train.trackers import open_trackers


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms or biases), as in GPT-2/Llama.

    Token embeddings get their own group so continued pretraining can move them more slowly
    (`embedding_lr_scale` < 1) than the rest. The fused implementation (one kernel over all
    parameters) exists on CPU and GPU since torch 2.4.
    """
    embed = {id(p) for p in model.get_input_embeddings().parameters()} if cfg.embedding_lr_scale != 1 else set()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2 and id(p) not in embed], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        {
            "params": [p for p in params if id(p) in embed],
            "weight_decay": cfg.weight_decay,
            "lr_scale": cfg.embedding_lr_scale,
        },
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
        fused=device.type in ("cuda", "cpu"),
    )


@torch.no_grad()
def evaluate(fwd, data: PackedTokens, cfg: TrainConfig, d, autocast) -> float:
    """Mean loss over the first `eval_batches` micro-batches of the validation set (fixed windows)."""
    fwd.eval()
    n = min(len(data), cfg.eval_batches * cfg.micro_batch_size)
    mine = list(range(d.rank, n, d.world)) or [0]
    total = torch.zeros((), device=d.device)
    for i in range(0, len(mine), cfg.micro_batch_size):
        batch = torch.from_numpy(data.batch(mine[i : i + cfg.micro_batch_size])).to(d.device)
        with autocast:
            logits = fwd(input_ids=batch[:, :-1]).logits
        total += F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten(), reduction="sum")
    fwd.train()
    return mean_across(total / (len(mine) * cfg.seq_len), d).item()


class StopFlag:
    """Turns SIGTERM (Slurm preemption, `kill`) into a checkpoint-and-exit at the next step."""

    def __init__(self):
        self.set = False
        with contextlib.suppress(ValueError):  # not the main thread: leave handlers alone
            signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.set = True


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
    model: NotRequired[object]  # returned (the in-memory model, for callers and tests), not recorded


def pretrain(model_cfg: ModelConfig, cfg: TrainConfig, run_dir: str | Path, seed: int) -> PretrainResult:
    """Train (or resume) a model in `run_dir`; returns a summary of the run and the trained model."""
    started = time.time()
    run_dir = Path(run_dir)
    d = setup_distributed()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    elif d.world > 1 and d.device.type == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads() // int(d.world)))
    stop = StopFlag()

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
        raw = load_causal_lm(cfg.init_from, dtype=torch.float32, attn_implementation="sdpa")
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
    wrapped = wrap_model(raw, d, cfg.fsdp, bf16)
    fwd = torch.compile(wrapped) if cfg.compile else wrapped
    optimizer = make_optimizer(wrapped, cfg, d.device)
    state = {"samples": 0, "tokens": 0}
    step, last_loss = 0, None
    if resume_from:
        saved = load_resume_state(resume_from, wrapped, optimizer)
        step, last_loss = saved["step"], saved["loss"]
        state = {"samples": saved["samples"], "tokens": saved["tokens"]}

    n_params = count_params(raw)
    n_non_embed = count_params(raw, exclude_embeddings=True)
    fpt = flops_per_token(config, n_non_embed, cfg.seq_len)
    mixture = Mixture(sources, cfg.mix or {n: 1.0 for n in sources}, seed)
    global_batch = cfg.micro_batch_size * cfg.grad_accum * d.world
    save_at = checkpoint_steps(cfg.max_steps, cfg.checkpoint_every, cfg.log_spaced_checkpoints)
    autocast = torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=bf16 and not cfg.fsdp)
    recorded = {"model": model_cfg.model_dump(), "train": cfg.model_dump()}
    trackers = open_trackers(run_dir, cfg, "pretrain", recorded, is_main=d.is_main)
    metrics = MetricsWriter(run_dir, "pretrain", trackers) if d.is_main else None

    def checkpoint(at: int, loss: float | None) -> Path:
        return save_checkpoint(
            ckpt_root, at, raw, wrapped, optimizer, {**state, "loss": loss}, tokenizer_dir, d.is_main
        )

    if step == 0 and 0 in save_at:
        checkpoint(0, None)
    if d.is_main:
        msg = f"resuming from {resume_from.name}" if resume_from else "starting from scratch"
        windows = sum(len(s) for s in sources.values())
        print(
            f"pretrain: {n_params / 1e6:.2f}M params, {windows} windows of {cfg.seq_len} tokens, "
            f"{global_batch * cfg.seq_len} tokens/step, {precision} on {d.device.type}, {msg}",
            flush=True,
        )

    progress = Progress(
        TextColumn("pretrain"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  {task.fields[tps]:,.0f} tok/s"),
        TimeRemainingColumn(),
        disable=not d.is_main,
        transient=True,
        auto_refresh=False,
    )  # redrawn at log steps: a 10 Hz refresh thread costs the loop GIL time
    task = progress.add_task("steps", total=cfg.max_steps, completed=step, loss=float("nan"), tps=0.0)
    interrupted, window_tokens, window_time = False, 0, 0.0
    with progress:
        while step < cfg.max_steps:
            t0 = time.perf_counter()
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            loss_sum = torch.zeros((), device=d.device)
            for micro in range(cfg.grad_accum):
                start = DataOrder.micro_slice(state["samples"], micro, d.rank, d.world, cfg.micro_batch_size)
                batch = torch.from_numpy(mixture.batch(start, cfg.micro_batch_size))
                batch = batch.to(d.device, non_blocking=True)
                last_micro = micro == cfg.grad_accum - 1
                sync = contextlib.nullcontext() if last_micro or d.world == 1 or cfg.fsdp else wrapped.no_sync()
                with sync:
                    with autocast:
                        logits = fwd(input_ids=batch[:, :-1]).logits
                    loss = cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
                    (loss / cfg.grad_accum).backward()
                loss_sum += loss.detach()
            grad_norm = torch.nn.utils.clip_grad_norm_(wrapped.parameters(), cfg.grad_clip or float("inf"))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            state["samples"] += global_batch
            state["tokens"] += global_batch * cfg.seq_len
            window_tokens += global_batch * cfg.seq_len

            if step % cfg.log_every == 0 or step == cfg.max_steps or step in save_at:
                last_loss = mean_across(loss_sum / cfg.grad_accum, d).item()
                norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
                window_time += time.perf_counter() - t0
                tps = window_tokens / window_time
                row = {
                    "step": step,
                    "loss": last_loss,
                    "lr": lr,
                    "grad_norm": float(norm),
                    "tokens": state["tokens"],
                    "tok_per_s": tps,
                    "model_flops_per_s": tps * fpt,
                    "elapsed_s": time.time() - started,
                }
                if d.is_main:
                    metrics.log(**row)
                progress.update(task, completed=step, loss=last_loss, tps=tps, refresh=True)
                window_tokens, window_time = 0, 0.0
            else:
                window_time += time.perf_counter() - t0
            if val_data is not None and (step % cfg.eval_every == 0 or step == cfg.max_steps):
                val_loss = evaluate(fwd, val_data, cfg, d, autocast)
                if d.is_main:
                    metrics.log(step=step, tokens=state["tokens"], val_loss=val_loss)
            # ranks agree on stopping at log steps only: an all-reduce every step would sync the GPU
            if d.world == 1 or step % cfg.log_every == 0:
                interrupted = any_across(stop.set, d) and step < cfg.max_steps
            if step in save_at or interrupted:
                checkpoint(step, last_loss)
            if interrupted:
                break

    barrier(d)
    summary = {
        "steps": step,
        "tokens": state["tokens"],
        "params": n_params,
        "final_loss": last_loss,
        "interrupted": interrupted,
        "checkpoint": str(latest_checkpoint(ckpt_root) or ""),
        "flops_per_token": fpt,
        "precision": precision,
        "samples_per_source": mixture.counts(),
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
    teardown_distributed()
    return {**summary, "model": raw}  # the in-memory model, for callers and tests; not in the manifest


def _pad_id(tokenizer_dir: Path) -> int | None:
    """The tokenizer's pad id goes into the model config so generation pads correctly."""
    if not (tokenizer_dir / "tokenizer.json").exists():
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir)).pad_token_id
