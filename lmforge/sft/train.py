"""The SFT loop: full fine-tuning, LoRA or LLaMA-Adapter (both through `peft`) on padded batches;
a killed run resumes from its last step checkpoint (lmforge/train/resume.py) to the same weights.

Same ingredients as pretraining (AdamW, warmup + cosine, clipping, bf16 autocast where the chip
has it) on the model's own loss, which HF computes over the label tokens only.
"""

import hashlib
import itertools
import json
import math
import shutil
import time
from pathlib import Path

import torch
from typing_extensions import TypedDict

from lmforge.chat.encoding import IGNORE, batches, collate
from lmforge.recipe import SftConfig, TrainConfig
from lmforge.train import lr_at, use_bf16
from lmforge.train.resume import load_resume, resume_tag, save_resume


@torch.no_grad()
def heldout_loss(model, examples: list[tuple], batch_size: int, pad_id: int) -> float:
    """Mean negative log-likelihood per assistant token (token-weighted over all examples)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        b = {k: v.to(model.device) for k, v in collate(examples[i : i + batch_size], pad_id).items()}
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        labels = b["labels"][:, 1:]
        total += torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="sum"
        ).item()
        count += int((labels != IGNORE).sum())
    return total / max(count, 1)


class SftTrained(TypedDict):
    steps: int
    resumed_from: int  # the step a killed run went on from (0: a fresh start)
    epochs: float
    final_loss: float
    tokens: int  # answer tokens the loss saw
    tok_per_s: float
    trainable_params: int


def sft_batches(examples: list[tuple], batch_size: int, pad_id: int, seed: int):
    """Padded batches epoch after epoch (each epoch's order a function of the seed and the epoch)."""
    for epoch in itertools.count():
        yield from batches(examples, batch_size, pad_id, seed, epoch)


def examples_fingerprint(examples: list[tuple]) -> str:
    h = hashlib.sha256()
    for ids, labels in examples:
        h.update(json.dumps([ids, labels]).encode())
    return h.hexdigest()


def train_sft(
    model, examples: list[tuple], cfg: SftConfig, seed: int, pad_id: int, log, resume_dir: Path | None = None
) -> SftTrained:
    """Train for cfg.epochs over `examples`; `log(step=..., loss=..., lr=...)` receives progress. With
    `resume_dir`, checkpoint every cfg.checkpoint_every steps and continue a killed run from there."""
    torch.manual_seed(seed)
    device = model.device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999), fused=device.type in ("cuda", "cpu")
    )
    per_step = cfg.batch_size * cfg.grad_accum
    steps = max(1, math.ceil(len(examples) * cfg.epochs / per_step))
    schedule = TrainConfig(
        lr=cfg.lr, warmup_steps=min(cfg.warmup_steps, steps // 2), max_steps=steps, schedule="cosine"
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16(cfg.precision, device))
    tag = resume_tag(examples_fingerprint(examples), cfg, seed)
    first = load_resume(resume_dir, model, optimizer, tag, "sft") if resume_dir and cfg.resume else 0
    # the micro-batches the killed run already took are skipped
    stream = itertools.islice(sft_batches(examples, cfg.batch_size, pad_id, seed), first * cfg.grad_accum, None)
    model.train()
    started, tokens, loss = time.perf_counter(), 0, float("nan")
    for step in range(first, steps):
        lr = lr_at(step, schedule)
        for group in optimizer.param_groups:
            group["lr"] = lr
        total = 0.0
        for _ in range(cfg.grad_accum):
            batch = {k: v.to(device) for k, v in next(stream).items()}
            with autocast:
                out = model(**batch)
            (out.loss / cfg.grad_accum).backward()
            total += out.loss.item() / cfg.grad_accum
            tokens += int(batch["attention_mask"].sum())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = total
        if (step + 1) % cfg.log_every == 0 or step + 1 == steps:
            log(step=step + 1, loss=loss, lr=lr, tok_per_s=tokens / (time.perf_counter() - started))
        if resume_dir and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < steps:
            save_resume(resume_dir, model, optimizer, step + 1, tag)
    if resume_dir:  # finished: nothing to resume any more
        shutil.rmtree(resume_dir, ignore_errors=True)
    model.eval()
    return {
        "steps": steps,
        "resumed_from": first,
        "epochs": cfg.epochs,
        "final_loss": loss,
        "tokens": tokens,
        "tok_per_s": tokens / (time.perf_counter() - started),
        "trainable_params": sum(p.numel() for p in params),
    }
