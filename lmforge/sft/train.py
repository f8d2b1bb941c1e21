"""What SFT adds to the training core (lmforge/train/loop.py via `tune`): padded batches of
conversations grouped by length, and the model's own loss, which HF computes over the label
(assistant) tokens only. Full fine-tuning, LoRA or LLaMA-Adapter; DDP or FSDP2 under torchrun; a
killed run resumes to the same weights.
"""

import hashlib
import json
from pathlib import Path

import torch
from typing_extensions import TypedDict

from lmforge.chat.encoding import IGNORE, collate, length_groups
from lmforge.recipe import SftConfig, TrainConfig
from lmforge.train import loop
from lmforge.train.data_order import EpochBatches
from lmforge.train.distributed import Dist, setup_distributed, sum_across
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
    tok_per_s: float
    trainable_params: int
    world_size: int  # processes that trained together
    interrupted: bool  # SIGTERM: checkpointed at the step's end, rerun to resume


def examples_fingerprint(examples: list[tuple]) -> str:
    h = hashlib.sha256()
    for ids, labels in examples:
        h.update(json.dumps([ids, labels]).encode())
    return h.hexdigest()


def answer_loss(model, batch: dict) -> loop.Out:
    out = model(**batch, use_cache=False)  # training keeps no KV cache
    return loop.Out(out.loss, {}, int(batch["attention_mask"].sum()), len(batch["input_ids"]))


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
) -> tuple[SftTrained, torch.nn.Module | None]:
    """Train for cfg.epochs over `examples`; `log(**row)` receives the metrics rows. Returns the
    figures and the trained model (plain, on rank 0; None on the other ranks)."""
    d = d or setup_distributed()
    lengths = [len(ids) for ids, _ in examples]
    together = cfg.grad_accum * d.world  # one step's micro-batches
    groups = EpochBatches(lambda epoch: length_groups(lengths, cfg.batch_size, seed, epoch, together))

    def batch(index: int) -> dict:
        rows = [examples[j] for j in groups[index]]
        return {k: v.to(d.device) for k, v in collate(rows, pad_id).items()}

    t = tune(
        model,
        cfg,
        "sft",
        d,
        items=len(examples),
        fingerprint=examples_fingerprint(examples),
        seed=seed,
        batch=batch,
        loss=answer_loss,
        log=log,
        resume_dir=resume_dir,
        train=train,
        rebuild=rebuild,
        weight_decay=cfg.weight_decay,
    )
    return {
        "steps": t.steps,
        "resumed_from": t.resumed_from,
        "epochs": cfg.epochs,
        "final_loss": t.done.last.get("loss", float("nan")),
        "tokens": t.done.tokens,
        "tok_per_s": t.done.tokens / max(t.done.seconds, 1e-9),
        "trainable_params": t.trainable_params,
        "world_size": d.world,
        "interrupted": t.done.interrupted,
    }, t.model
