"""`lmforge dpo`: preference tuning after `sft` (DPO, conservative DPO, IPO against a reference;
ORPO and SimPO without one; KTO on unpaired answers), full or LoRA, on the same chat template and
answer mask as `sft`. Writes `<run>/dpo/model` (a plain HF folder; LoRA
merged) and, for LoRA, `<run>/dpo/adapter`; metrics per step, held-out preference accuracy before
and after, the KL to the reference, plots and a report section."""

import time
from collections import Counter
from pathlib import Path

from typing_extensions import NotRequired

from lmforge.dpo.data import encode_pairs, encode_unpaired, mix_pairs
from lmforge.dpo.from_judge import pairs_from_judge
from lmforge.dpo.train import (
    DpoTrained,
    all_logps,
    answer_kl,
    data_fingerprint,
    preference_accuracy,
    reference_logps,
    train_dpo,
)
from lmforge.errors import ConfigError
from lmforge.models import load_model_and_tokenizer, load_tokenizer, resolve_model_dir, run_model
from lmforge.recipe import DpoConfig, PreferenceDataset, TrainConfig
from lmforge.rundir import fingerprint, read_metrics, record_stage, write_report_section
from lmforge.rundir.plots import line_plot
from lmforge.train.distributed import setup_distributed
from lmforge.train.figures import efficiency_line
from lmforge.train.trackers import stage_metrics
from lmforge.train.tuning import attach_method, load_quantized, merged_16bit


class DpoResult(DpoTrained):
    """Accuracies are on the held-out pairs (None without any)."""

    model: str
    output: str
    pairs: int
    heldout_pairs: int
    from_judge: dict | None  # pairs taken from a pairwise judge run, and what was dropped
    judge_vs_start: dict | None  # language -> the judge's pairwise result against the start
    skipped: dict[str, int]
    heldout_skipped: dict[str, int]
    skipped_where: list[str]
    desirable: int | None  # KTO: of the answers trained on (`pairs`), the desirable ones
    loss: str
    beta: float
    method: str
    heldout_likelihood_accuracy_before: float | None
    heldout_likelihood_accuracy_after: float | None
    heldout_reward_accuracy_before: float | None
    heldout_reward_accuracy_after: float | None
    heldout_kl_per_token: float | None
    worker_rank: NotRequired[int]  # returned by ranks other than 0 (which records the stage), not recorded


def run_dpo_stage(cfg: DpoConfig, run_dir: str | Path, seed: int = 0, tracking: TrainConfig | None = None) -> DpoResult:
    """`tracking`: the recipe's [train] block, whose tracker keys apply to every training stage."""
    started = time.time()
    run_dir = Path(run_dir)
    tracking = tracking or TrainConfig()
    d = setup_distributed(tracking.threads)
    datasets = list(cfg.datasets)
    judged = None
    if cfg.from_judge:
        judged = pairs_from_judge(cfg.from_judge, run_dir / "dpo" / "judge_pairs.jsonl")
        datasets.append(PreferenceDataset(path=judged["output"]))
    if not datasets:
        raise ConfigError("dpo.datasets: give at least one preference file (or dpo.from_judge)")
    kto = cfg.loss == "kto"
    if kto and cfg.batch_size < 2:
        raise ConfigError("dpo.batch_size: KTO estimates its reference point from a batch; give 2 or more")
    model_dir = resolve_model_dir(cfg.model) if cfg.model else run_model(run_dir, before="dpo")
    if model_dir is None:
        raise ConfigError(f"dpo: {run_dir} has no model to tune (run sft first, or set dpo.model)")
    pairs, skipped, where = mix_pairs(datasets, seed, unpaired=kto)
    heldout, h_skipped, _ = mix_pairs(cfg.heldout, seed) if cfg.heldout else ([], Counter(), [])
    if cfg.qlora:  # the 4-bit base is what trains and what before/after measure; the output is 16-bit
        model, tok = load_quantized(model_dir, cfg, "dpo", d.device), load_tokenizer(model_dir)
    else:
        model, tok = load_model_and_tokenizer(model_dir)
        model.to(d.device)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    max_len = cfg.max_len or model.config.max_position_embeddings
    if kto:
        train, too_long, where_long = encode_unpaired(tok, pairs, max_len, cfg.too_long, cfg.batch_size)
    else:
        train, too_long, where_long = encode_pairs(tok, pairs, max_len, cfg.too_long)
    held, _, _ = encode_pairs(tok, heldout, max_len, cfg.too_long)
    if not train:
        raise ConfigError("dpo: no usable preference pair (see the skip counts)")
    lora = cfg.method == "lora"
    model = attach_method(model, cfg, "dpo", seed)  # the adapter's initial weights from the seed too
    out = run_dir / "dpo"
    start = fingerprint(model_dir)["sha256"]

    def reference(pairs: list[dict], name: str) -> dict:
        path, key = out / name, f"{start}:{data_fingerprint(pairs)}"
        return reference_logps(model, pairs, cfg.batch_size, pad, path, key, lora, d)

    # ORPO and SimPO need no reference while training; the held-out pairs are scored against the start
    ref = reference(train, "reference_logps.json") if cfg.loss not in ("orpo", "simpo") else None
    held_ref = reference(held, "reference_logps_heldout.json") if held else None
    before = preference_accuracy(held_ref) if held else None  # likelihood per token, the reference's

    def rebuild():  # FSDP2: an unsharded copy for rank 0 to gather the trained weights into
        return attach_method(load_model_and_tokenizer(model_dir)[0], cfg, "dpo", seed)

    metrics = stage_metrics(run_dir, tracking, "dpo", cfg.model_dump(), is_main=d.is_main)
    try:
        trained, model = train_dpo(
            model,
            train,
            ref,
            cfg,
            seed,
            pad,
            metrics.log if metrics else None,
            resume_dir=out / "resume",
            d=d,
            train=tracking,
            rebuild=rebuild,
        )
    finally:
        if metrics:
            metrics.close()
    if trained["interrupted"]:
        return {"interrupted": True}
    if not d.is_main:
        return {"worker_rank": d.rank}
    after = kl = reward_acc = None
    if held:  # rank 0 alone, on the gathered model
        now = all_logps(model, held, cfg.batch_size, pad)
        after, reward_acc = preference_accuracy(now), preference_accuracy(now, held_ref)
        reference_model = None if lora else load_model_and_tokenizer(model_dir)[0].to(model.device)
        kl = answer_kl(model, reference_model, held, cfg.batch_size, pad)
    if lora:
        model.save_pretrained(out / "adapter")  # the adapter alone, before it is merged
    if cfg.qlora:
        final = merged_16bit(model, model_dir, cfg, "dpo", seed)
    else:
        final = model.merge_and_unload() if lora else model
    final.save_pretrained(out / "model", safe_serialization=True)
    tok.save_pretrained(out / "model")
    if cfg.judge:  # the judge's verdict: the tuned model against the one it started from
        from lmforge.judge import run_judge_stage

        judge_cfg = cfg.judge.model_copy(
            update={
                "model": str(out / "model"),
                "mode": "pairwise",
                "baseline_model": str(model_dir),
                "out": str(out / "judge"),
            }
        )
        judged_after = run_judge_stage(judge_cfg, run_dir)["languages"]
    summary = {
        "model": str(model_dir),
        "output": str(out / "model"),
        "pairs": len(train),
        "desirable": sum(p["desirable"] for p in train) if kto else None,
        "heldout_pairs": len(held),
        "from_judge": judged,
        "judge_vs_start": {lang: r.get("pairwise") for lang, r in judged_after.items()} if cfg.judge else None,
        "skipped": dict(skipped + too_long),
        "heldout_skipped": dict(h_skipped),
        "skipped_where": (where + where_long)[:20],
        "loss": cfg.loss,
        "beta": cfg.beta,
        "method": cfg.method,
        **trained,
        "heldout_likelihood_accuracy_before": before,
        "heldout_likelihood_accuracy_after": after,
        "heldout_reward_accuracy_before": 0.5 if held else None,
        "heldout_reward_accuracy_after": reward_acc,
        "heldout_kl_per_token": kl,
    }
    plots = _plots(run_dir)
    record_stage(
        run_dir,
        "dpo",
        cfg.model_dump(),
        [model_dir, *(d.path for d in cfg.datasets + cfg.heldout)],
        seed,
        started,
        summary,
    )
    write_report_section(run_dir, "dpo", dpo_report(summary, plots))
    return summary


def _plots(run_dir: Path) -> list[str]:
    rows = read_metrics(run_dir, "dpo")
    steps = [r["step"] for r in rows]
    line_plot(
        run_dir / "plots" / "dpo_loss.png",
        {"loss": (steps, [r["loss"] for r in rows]), "reward accuracy": (steps, [r["reward_accuracy"] for r in rows])},
        "step",
        "value",
        "DPO: loss and reward accuracy",
    )
    if rows and "logp_chosen" not in rows[0]:  # KTO: unpaired answers
        return ["plots/dpo_loss.png"]
    line_plot(
        run_dir / "plots" / "dpo_logps.png",
        {"chosen": (steps, [r["logp_chosen"] for r in rows]), "rejected": (steps, [r["logp_rejected"] for r in rows])},
        "step",
        "log p of the answer",
        "DPO: answers' log-probabilities",
    )
    return ["plots/dpo_loss.png", "plots/dpo_logps.png"]


LOSSES = {
    "sigmoid": "DPO",
    "ipo": "IPO",
    "kto": "KTO (Ethayarajh et al., 2024)",
    "orpo": "ORPO (Hong et al., 2024; no reference)",
    "simpo": "SimPO (Meng et al., 2024; no reference)",
}


def _fmt(x) -> str:
    return f"{x:.3f}" if isinstance(x, float) else "–"


def dpo_report(s: dict, plots: list[str]) -> str:
    f = s["final"]
    if s["loss"] == "kto":
        data = f"{s['pairs']} answers ({s['desirable']} desirable)"
        last = f"reward on the side of its label {f['reward_accuracy']:.2f}, reference point z {f['kl']:.4f}"
    else:
        data = f"{s['pairs']} pairs"
        last = f"reward accuracy {f['reward_accuracy']:.2f}, margin {f['reward_margin']:.3f}"
    lines = [
        "## DPO",
        "",
        f"{s['method']} {LOSSES[s['loss']]} (beta {s['beta']}) on `{Path(s['model']).name}`: {data}, "
        f"{s['steps']} steps, {s['pairs_per_s']:.1f} items/s; last step loss {f['loss']:.4f}, {last}.",
        "",
        f"Held-out ({s['heldout_pairs']} pairs, ties count half): preference accuracy by DPO's implicit reward "
        f"{_fmt(s['heldout_reward_accuracy_before'])} before (every margin is 0) → "
        f"{_fmt(s['heldout_reward_accuracy_after'])} after; by likelihood per answer token "
        f"{_fmt(s['heldout_likelihood_accuracy_before'])} → {_fmt(s['heldout_likelihood_accuracy_after'])}; "
        f"KL(policy ‖ reference) {_fmt(s['heldout_kl_per_token'])} nats per answer token.",
        "",
        efficiency_line(s),
        "",
    ]
    if s.get("from_judge"):
        j = s["from_judge"]
        lines += [
            f"{j['pairs']} pairs came from a pairwise judge run (dropped: "
            + (", ".join(f"{k} {v}" for k, v in j["dropped"].items()) or "none")
            + ").",
            "",
        ]
    for lang, p in (s.get("judge_vs_start") or {}).items():
        if p and p.get("pairs"):
            lines += [
                f"Judge, {lang}: the tuned model against the starting one — adjusted win rate "
                f"{p['adjusted_win_rate']:.1%} (95% CI {p['adjusted_win_rate_ci95'][0]:.1%}–"
                f"{p['adjusted_win_rate_ci95'][1]:.1%}), position bias {p['position_bias_rate']:.1%}.",
                "",
            ]
    if s["skipped"]:
        lines += [
            "Skipped: "
            + ", ".join(f"{k} {v}" for k, v in s["skipped"].items())
            + "; e.g. "
            + "; ".join(s["skipped_where"][:3]),
            "",
        ]
    lines += [f"![dpo]({p})" for p in plots]
    return "\n".join(lines)
