"""What SFT adds to the training core (lmforge/train/loop.py via `tune`): padded batches of
conversations grouped by length, or (`sft.packing`) rows of whole conversations that attend only
to themselves (lmforge/train/documents.py); and the model's own loss, which HF computes over the
label (assistant) tokens only. Full fine-tuning, LoRA or LLaMA-Adapter; DDP or FSDP2 under torchrun; a
killed run resumes to the same weights.
"""

import hashlib
import json
import random
from pathlib import Path

import torch
from typing_extensions import TypedDict

from lmforge.chat.encoding import IGNORE, collate, length_groups
from lmforge.errors import ConfigError
from lmforge.recipe import SftConfig, TrainConfig
from lmforge.train import loop
from lmforge.train.data_order import EpochBatches
from lmforge.train.distributed import Dist, setup_distributed, sum_across
from lmforge.train.documents import collate_packed, pack_rows
from lmforge.train.figures import efficiency
from lmforge.train.tuning import tune


@torch.no_grad()
def heldout_loss(model, examples: list[tuple], batch_size: int, pad_id: int, d: Dist | None = None) -> float:
    """Mean negative log-likelihood per assistant token (token-weighted over all examples); with
    several processes each scores its share of the examples (an unwrapped model: no collectives)."""
    rank, world = (d.rank, d.world) if d else (0, 1)
    mine = examples[rank::world]
    model.eval()
    total = torch.zeros(2, dtype=torch.float64)
    for i in range(0, len(mine), batch_size):
        b = {k: v.to(model.device) for k, v in collate(mine[i : i + batch_size], pad_id).items()}
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        labels = b["labels"][:, 1:]
        total[0] += torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="sum"
        ).item()
        total[1] += int((labels != IGNORE).sum())
    if d and d.world > 1:
        total = sum_across(total.to(d.device), d).cpu()
    return float(total[0] / max(total[1], 1))


class SftTrained(TypedDict):
    steps: int
    resumed_from: int  # the step a killed run went on from (0: a fresh start)
    epochs: float
    final_loss: float
    tokens: int  # tokens of the conversations trained on, padding excluded (this run, all processes)
    tok_per_s: float  # real tokens (padding excluded) per second
    padding_share: float  # of the token positions computed, the share that was padding
    peak_memory_gib: float  # rank 0's peak (CUDA: allocated; CPU: resident set)
    settings: dict  # rows (packed or padded), attention kernel, activation checkpointing, fsdp
    trainable_params: int
    world_size: int  # processes that trained together
    interrupted: bool  # SIGTERM: checkpointed at the step's end, rerun to resume


def _rows(row_len: int | None) -> str:
    return (
        f"conversations packed into rows of {row_len} tokens with document masks" if row_len else "padded conversations"
    )


def _row_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def examples_fingerprint(examples: list[tuple]) -> str:
    h = hashlib.sha256()
    for ids, labels in examples:
        h.update(json.dumps([ids, labels]).encode())
    return h.hexdigest()


def answer_loss(model, batch: tuple[dict, int, int, torch.Tensor | None]) -> loop.Out:
    """`batch`: the model's inputs, the conversations' tokens in it (padding excluded), how many,
    and per-conversation loss weights or None. Without weights: the mean over every answer token
    of the batch. With them: each conversation's mean answer-token loss times its weight, averaged
    over the conversations (multi-task data such as `distill`'s, where one task counts λ times)."""
    inputs, tokens, conversations, weights = batch
    if weights is None:
        out = model(**inputs, use_cache=False)  # training keeps no KV cache
        return loop.Out(out.loss, {}, tokens, conversations, inputs["input_ids"].numel())
    labels = inputs["labels"]
    logits = model(**{k: v for k, v in inputs.items() if k != "labels"}, use_cache=False).logits[:, :-1].float()
    target = labels[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE, reduction="none")
    per_row = ce.sum(1) / (target != IGNORE).sum(1).clamp(min=1)
    return loop.Out((weights * per_row).mean(), {}, tokens, conversations, inputs["input_ids"].numel())


def train_sft(
    model,
    examples: list[tuple],
    cfg: SftConfig,
    seed: int,
    pad_id: int,
    log,
    resume_dir: Path | None = None,
    d: Dist | None = None,
    train: TrainConfig | None = None,
    rebuild=None,
    row_len: int | None = None,
    evaluate_with=None,
    weights: list[float] | None = None,
) -> tuple[SftTrained, torch.nn.Module | None]:
    """Train for cfg.epochs over `examples`; `log(**row)` receives the metrics rows. With `row_len`
    (sft.packing) a micro-batch is cfg.batch_size rows of that many tokens, each holding whole
    conversations; else cfg.batch_size conversations padded to the longest. `weights`: a loss
    weight per example (padded rows only; see `answer_loss`). Returns the figures and the trained
    model (plain, on rank 0; None on the other ranks)."""
    if weights is not None and row_len:
        raise ConfigError("sft: per-example loss weights need padded rows, not sft.packing")
    d = d or setup_distributed()
    lengths = [len(ids) for ids, _ in examples]
    together = cfg.grad_accum * d.world  # one step's micro-batches
    if row_len:  # packed once; the rows' order changes every epoch
        rows = pack_rows(lengths, row_len, seed)
        groups = EpochBatches(lambda epoch: _row_batches(len(rows), cfg.batch_size, seed, epoch))
    else:
        groups = EpochBatches(lambda epoch: length_groups(lengths, cfg.batch_size, seed, epoch, together))

    def batch(index: int) -> tuple[dict, int, int]:
        if row_len:
            picked = [[examples[j] for j in rows[r]] for r in groups[index]]
            inputs = collate_packed(picked, row_len, pad_id)
            chosen = [x for row in picked for x in row]
        else:
            chosen = [examples[j] for j in groups[index]]
            inputs = collate(chosen, pad_id)
        w = torch.tensor([weights[j] for j in groups[index]], device=d.device) if weights else None
        return {k: v.to(d.device) for k, v in inputs.items()}, sum(len(x) for x, _ in chosen), len(chosen), w

    t = tune(
        model,
        cfg,
        "sft",
        d,
        items=len(rows) if row_len else len(examples),
        fingerprint=examples_fingerprint(examples) + (examples_fingerprint([(weights, [])]) if weights else ""),
        seed=seed,
        batch=batch,
        loss=answer_loss,
        log=log,
        resume_dir=resume_dir,
        train=train,
        rebuild=rebuild,
        weight_decay=cfg.weight_decay,
        packed=bool(row_len),
        evaluate_with=evaluate_with,
    )
    return {
        "steps": t.steps,
        "resumed_from": t.resumed_from,
        "epochs": cfg.epochs,
        "final_loss": t.done.last.get("loss", float("nan")),
        "tokens": t.done.tokens,
        **efficiency(t.done, train or TrainConfig(), t.attention, _rows(row_len)),
        "trainable_params": t.trainable_params,
        "world_size": d.world,
        "interrupted": t.done.interrupted,
    }, t.model
