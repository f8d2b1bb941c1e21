"""What DPO adds to the training core (lmforge/train/loop.py via `tune`), and what it measures.
Chosen and rejected answers of a pair share one row behind one copy of their prompt (packing.py);
the reference log-probabilities come from a cache computed once, sharded over the ranks (no second
model in memory while training); with LoRA the reference is the model with its adapter disabled."""

import contextlib
import hashlib
import json
import random
from pathlib import Path

import torch
from typing_extensions import TypedDict

from lmforge.chat.encoding import collate, length_groups
from lmforge.dpo.loss import kl_reference_point, kto_loss, odds_ratio_loss, preference_loss, simpo_loss
from lmforge.dpo.packing import pack_pairs, packed_length, pair_logps
from lmforge.errors import DataError
from lmforge.recipe import DpoConfig, TrainConfig
from lmforge.rundir import atomic_write_text
from lmforge.train import loop
from lmforge.train.data_order import EpochBatches
from lmforge.train.distributed import Dist, barrier, setup_distributed, sum_across
from lmforge.train.figures import efficiency
from lmforge.train.tuning import tune


def all_logps(model, pairs: list[dict], batch_size: int, pad_id: int, d: Dist | None = None) -> dict[str, torch.Tensor]:
    """Summed log-probs and answer token counts of every pair, in order; batches are taken in
    packed-length order (no gradients here, so grouping costs nothing but padding). With several
    processes each scores every world-th batch on its unwrapped model, and one all-reduce gathers them."""
    rank, world = (d.rank, d.world) if d else (0, 1)
    out = {
        "chosen": torch.zeros(len(pairs)),
        "rejected": torch.zeros(len(pairs)),
        "chosen_tokens": torch.zeros(len(pairs)),
        "rejected_tokens": torch.zeros(len(pairs)),
    }
    order = sorted(range(len(pairs)), key=lambda i: packed_length(pairs[i]))
    with torch.no_grad():
        for i in range(rank * batch_size, len(order), world * batch_size):
            idx = order[i : i + batch_size]
            logps, counts = pair_logps(model, pack_pairs(pairs, idx, pad_id, model.device))
            n, at = len(idx), torch.tensor(idx)
            out["chosen"][at], out["rejected"][at] = logps[:n].cpu(), logps[n:].cpu()
            out["chosen_tokens"][at], out["rejected_tokens"][at] = counts[:n].cpu().float(), counts[n:].cpu().float()
    if world > 1:  # every pair was scored by exactly one rank, the others hold zeros there
        names = list(out)
        summed = sum_across(torch.stack([out[k] for k in names]).to(d.device), d).cpu()
        out = dict(zip(names, summed))
    for k in ("chosen_tokens", "rejected_tokens"):
        out[k] = out[k].long()
    return out


def data_fingerprint(pairs: list[dict]) -> str:
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps([p["chosen"], p["rejected"], p.get("desirable")]).encode())
    return h.hexdigest()


def reference_logps(
    model,
    pairs: list[dict],
    batch_size: int,
    pad_id: int,
    path: Path,
    fingerprint: str,
    adapter: bool,
    d: Dist | None = None,
) -> dict[str, torch.Tensor]:
    """The reference model's log-probs: from `path` when its fingerprint (reference weights,
    tokenizer, encoded pairs) matches, else computed once (sharded over the ranks) and written there."""
    cached = path.is_file()
    if d:
        barrier(d)  # every rank decided before rank 0 may write the file
    if cached:
        saved = json.loads(path.read_text())
        if saved["fingerprint"] != fingerprint:
            raise DataError(
                f"{path}: reference log-probs of another model, tokenizer or data "
                f"(fingerprint {saved['fingerprint'][:12]}…, now {fingerprint[:12]}…); delete it to recompute"
            )
        return {k: torch.tensor(v) for k, v in saved["logps"].items()}  # float32 sums round-trip exactly
    context = model.disable_adapter() if adapter else contextlib.nullcontext()
    model.eval()
    with context:
        ref = all_logps(model, pairs, batch_size, pad_id, d)
    if not d or d.is_main:
        payload = {"fingerprint": fingerprint, "logps": {k: v.tolist() for k, v in ref.items()}}
        atomic_write_text(path, json.dumps(payload))
    return ref


def _normalise(logps: torch.Tensor, tokens: torch.Tensor, loss_type: str) -> torch.Tensor:
    return logps / tokens.clamp(min=1) if loss_type == "ipo" else logps


def pair_groups(
    pairs: list[dict], batch_size: int, seed: int, by_length: bool, epoch: int, together: int = 1
) -> list[list[int]]:
    """One epoch's batches of pair indices, shuffled anew each epoch; with `by_length` grouped by
    packed length. Shuffled is the default: on the shipped sample, batches of similar-length pairs
    (which are similar pairs) left the DPO loss over all pairs at 0.62-0.64 after 30 LoRA steps
    where shuffled batches reached 0.58-0.59, as TRL's do, for ~20% more time per step; packing
    already removed the larger waste, the prompt computed twice."""
    if by_length:
        return length_groups([packed_length(p) for p in pairs], batch_size, seed, epoch, together)
    order = list(range(len(pairs)))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _against_reference(logps, counts, idx: list[int], ref: dict, cfg: DpoConfig, d: Dist):
    """DPO / conservative DPO / IPO on a micro-batch of pairs."""
    n = len(idx)
    pol_c, pol_r = _normalise(logps[:n], counts[:n], cfg.loss), _normalise(logps[n:], counts[n:], cfg.loss)
    ix = torch.tensor(idx)
    ref_c = _normalise(ref["chosen"][ix], ref["chosen_tokens"][ix], cfg.loss).to(d.device)
    ref_r = _normalise(ref["rejected"][ix], ref["rejected_tokens"][ix], cfg.loss).to(d.device)
    losses, _, _ = preference_loss(pol_c, pol_r, ref_c, ref_r, cfg.beta, cfg.loss, cfg.label_smoothing)
    # rewards on summed log-probs whatever the loss (IPO's are per-token averages), as TRL reports them
    reward_c = cfg.beta * (logps[:n].detach() - ref["chosen"][ix].to(d.device))
    reward_r = cfg.beta * (logps[n:].detach() - ref["rejected"][ix].to(d.device))
    return losses.mean(), _pair_stats(reward_c, reward_r, logps, n)


def _reference_free(logps, counts, n: int, cfg: DpoConfig):
    """ORPO (an NLL term + the odds-ratio term) or SimPO (+ `sft_weight` x an NLL term, CPO's), on
    per-token average log-probs of the answers. ORPO's NLL runs over the whole chosen sequences
    (prompt and template too; `logps` then holds their rest after the answers), CPO's over the
    chosen answers, as TRL and the authors' code compute them."""
    avg = logps[: 2 * n] / counts[: 2 * n].clamp(min=1)
    if cfg.loss == "orpo":
        losses, reward_c, reward_r = odds_ratio_loss(avg[:n], avg[n:], cfg.beta)
    else:
        losses, reward_c, reward_r = simpo_loss(avg[:n], avg[n:], cfg.beta, cfg.simpo_gamma, cfg.label_smoothing)
    value = losses.mean()
    stats = _pair_stats(reward_c, reward_r, logps, n)
    if cfg.loss == "orpo" or cfg.sft_weight > 0:
        rest, rest_count = (logps[2 * n :].sum(), counts[2 * n :].sum()) if cfg.loss == "orpo" else (0.0, 0)
        nll = -(logps[:n].sum() + rest) / (counts[:n].sum() + rest_count).clamp(min=1)
        value = value + (1.0 if cfg.loss == "orpo" else cfg.sft_weight) * nll
        stats["nll"] = nll.detach()
    return value, stats


def _kto(logps, idx: list[int], pairs: list[dict], ref: dict, cfg: DpoConfig, d: Dist):
    """KTO on a micro-batch of answers ("chosen" rows) and their mismatched KL rows ("rejected");
    the reference point z from this micro-batch (TRL averages it over the processes of a step;
    per micro-batch, 2 processes compute what 1 does with accumulation)."""
    n = len(idx)
    ix = torch.tensor(idx)
    desirable = torch.tensor([pairs[i]["desirable"] for i in idx], device=logps.device)
    kl = kl_reference_point(logps[n:].detach(), ref["rejected"][ix].to(d.device))
    losses, rewards = kto_loss(
        logps[:n], ref["chosen"][ix].to(d.device), desirable, kl, cfg.beta, cfg.desirable_weight, cfg.undesirable_weight
    )
    stats = {
        "kl": kl,
        "reward_accuracy": ((rewards > 0) == desirable).float().mean(),  # rewards on the side of their label
        "logp_answer": logps[:n].detach().mean(),
    }
    return losses.mean(), stats


def _pair_stats(reward_c, reward_r, logps, n: int) -> dict:
    return {
        "reward_accuracy": (reward_c > reward_r).float().mean(),
        "reward_margin": (reward_c - reward_r).mean(),
        "logp_chosen": logps[:n].detach().mean(),
        "logp_rejected": logps[n : 2 * n].detach().mean(),
    }


def fixed_groups(items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Consecutive runs of `batch_size` items, the runs in a new seeded order each epoch (KTO)."""
    groups = [list(range(i, min(i + batch_size, items))) for i in range(0, items, batch_size)]
    random.Random(seed * 1000 + epoch).shuffle(groups)
    return groups


class DpoTrained(TypedDict):
    steps: int
    resumed_from: int  # the step a killed run went on from (0: a fresh start)
    final: dict[str, float]  # the last step's loss, reward accuracy and margin, answer log-probs
    pairs_per_s: float
    tok_per_s: float  # real tokens (each pair's row once, padding excluded) per second
    padding_share: float
    peak_memory_gib: float  # rank 0's peak (CUDA: allocated; CPU: resident set)
    settings: dict  # rows, attention kernel, activation checkpointing, fsdp
    trainable_params: int
    world_size: int  # processes that trained together
    interrupted: bool  # SIGTERM: checkpointed at the step's end, rerun to resume


def train_dpo(
    model,
    pairs: list[dict],
    ref: dict,
    cfg: DpoConfig,
    seed: int,
    pad_id: int,
    log,
    resume_dir: Path | None = None,
    d: Dist | None = None,
    train: TrainConfig | None = None,
    rebuild=None,
) -> tuple[DpoTrained, torch.nn.Module | None]:
    """Train for cfg.epochs on the training core (lmforge/train/tuning.py); returns the figures
    and the trained model (plain, on rank 0; None on the other ranks)."""
    d = d or setup_distributed()
    together = cfg.grad_accum * d.world  # one step's micro-batches
    if cfg.loss == "kto":  # fixed batches, shuffled as wholes: each holds the answers its KL rows mix
        groups = EpochBatches(lambda epoch: fixed_groups(len(pairs), cfg.batch_size, seed, epoch))
    else:
        groups = EpochBatches(
            lambda epoch: pair_groups(pairs, cfg.batch_size, seed, cfg.group_by_length, epoch, together)
        )

    full_nll = cfg.loss == "orpo"  # its NLL term also reads the chosen prompts' tokens

    def batch(index: int) -> tuple[list[int], dict]:
        idx = groups[index]
        return idx, pack_pairs(pairs, idx, pad_id, d.device, chosen_prompts=full_nll)

    def loss(module, b: tuple[list[int], dict]) -> loop.Out:
        idx, packed = b
        logps, counts = pair_logps(module, packed)
        logps = logps.float()
        if cfg.loss == "kto":
            value, stats = _kto(logps, idx, pairs, ref, cfg, d)
        elif cfg.loss in ("orpo", "simpo"):
            value, stats = _reference_free(logps, counts, len(idx), cfg)
        else:
            value, stats = _against_reference(logps, counts, idx, ref, cfg, d)
        real = sum(packed_length(pairs[i]) for i in idx)  # the rows' tokens, padding excluded
        return loop.Out(value, stats, real, len(idx), packed["input_ids"].numel())

    t = tune(
        model,
        cfg,
        "dpo",
        d,
        items=len(pairs),
        fingerprint=data_fingerprint(pairs),
        seed=seed,
        batch=batch,
        loss=loss,
        log=log,
        resume_dir=resume_dir,
        train=train,
        rebuild=rebuild,
    )
    return {
        "steps": t.steps,
        "resumed_from": t.resumed_from,
        "final": t.done.last,
        "pairs_per_s": t.done.samples / max(t.done.seconds, 1e-9),
        **efficiency(t.done, train or TrainConfig(), t.attention, "pairs, one row each with a shared prompt"),
        "trainable_params": t.trainable_params,
        "world_size": d.world,
        "interrupted": t.done.interrupted,
    }, t.model


def preference_accuracy(logps: dict, ref: dict | None = None) -> float:
    """Share of pairs in which the chosen answer wins, ties counting half: by DPO's implicit reward
    (log-ratio to `ref`; 0.5 before training, where every margin is 0), or without `ref` by
    likelihood per answer token (so that short answers do not win by being short)."""
    if ref is not None:
        margin = (logps["chosen"] - ref["chosen"]) - (logps["rejected"] - ref["rejected"])
    else:
        margin = logps["chosen"] / logps["chosen_tokens"].clamp(min=1) - logps["rejected"] / logps[
            "rejected_tokens"
        ].clamp(min=1)
    return float(((margin > 0).float() + 0.5 * (margin == 0).float()).mean()) if len(margin) else float("nan")


def _logits(model, b: dict) -> torch.Tensor:
    return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()


def answer_kl(policy, reference, pairs: list[dict], batch_size: int, pad_id: int) -> float:
    """Mean per-token KL(policy || reference) of the next-token distributions over the held-out
    chosen answers' positions (teacher-forced, exact over the vocabulary). `reference` None: the
    policy itself with its adapter disabled (LoRA)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            rows = [pairs[j]["chosen"] for j in range(i, min(i + batch_size, len(pairs)))]
            b = {k: v.to(policy.device) for k, v in collate(rows, pad_id).items()}
            mask = b["labels"][:, 1:] != -100
            p = torch.log_softmax(_logits(policy, b), -1)
            with policy.disable_adapter() if reference is None else contextlib.nullcontext():
                q = torch.log_softmax(_logits(reference or policy, b), -1)
            total += float((p.exp() * (p - q)).sum(-1)[mask].sum())
            count += int(mask.sum())
    return total / max(count, 1)
