"""Evaluation during training: every `train.eval_every` steps, rank 0 scores the model being trained
on `train.eval_tasks` (any task type) and `train.eval_bpb` (held-out text per language), and the
figures join the step's row in metrics.jsonl and the trackers: LeoLM's gain in the new language and
forgetting in the old one as curves over training, not a before/after pair.

The other processes go on to the next step and wait for rank 0 at its gradient all-reduce (DDP);
a sharded model (FSDP2) needs every process for a forward, so it is refused there. Item sharding
(shard.py) stays off here: rank 0 scores alone.
"""

from collections.abc import Callable
from pathlib import Path

import torch

from lmforge.errors import ConfigError
from lmforge.recipe import EvalConfig, TrainConfig
from lmforge.rundir.plots import line_plot
from lmforge.tasks import load_task


def eval_hook(
    cfg: TrainConfig | None, get_model: Callable[[], torch.nn.Module], tokenizer, work_dir: Path, d, last: int
):
    """A `step -> row | None` hook for the training loop; None when nothing is asked for."""
    if cfg is None or (not cfg.eval_tasks and not cfg.eval_bpb):
        return None
    if cfg.fsdp:
        raise ConfigError(
            "train.eval_tasks / train.eval_bpb with train.fsdp: a sharded model cannot be scored by rank 0 alone"
        )
    tasks = [load_task(p) for p in cfg.eval_tasks]  # a bad task fails before training starts
    scoring = EvalConfig(bpb_texts=cfg.eval_bpb, limit=cfg.eval_limit, max_docs=cfg.eval_limit, batch_size=8)

    def run(step: int) -> dict | None:
        if (step % cfg.eval_every and step != last) or not d.is_main:
            return None
        from lmforge.eval.stage import evaluate_model

        model = get_model()
        training = model.training
        with torch.no_grad():  # rank 0 alone: no item sharding outside `sharded()`
            results = evaluate_model(model, tokenizer, scoring, tasks, work_dir, harness=False)
        model.train(training)
        return during_row(results)

    return run


def during_row(results: dict) -> dict[str, float]:
    """The metrics row: eval_bpb_<lang>, eval_<task>_<metric>, eval_core_<lang>."""
    row = {f"eval_bpb_{lang}": s["bits_per_byte"] for lang, s in results["bits_per_byte"].items()}
    for t in results["tasks"]:
        row |= {f"eval_{t['task']}_{m}": v["value"] for m, v in t["metrics"].items()}
    row |= {f"eval_core_{lang}": a["value"] for lang, a in results.get("aggregate", {}).items()}
    return row


def during_report(run_dir: Path, rows: list[dict], stage: str) -> list[str]:
    """Report lines: the evaluation curves of one stage's metrics rows (none if it ran no evals)."""
    keys = sorted({k for r in rows for k in r if k.startswith("eval_")})
    if not keys:
        return []
    lines = ["", "### Evaluation during training", "", "| figure | first | last |", "|---|---:|---:|"]
    series = {}
    for k in keys:
        points = [(r["tokens"], r[k]) for r in rows if k in r]
        series[k.removeprefix("eval_")] = ([p[0] for p in points], [p[1] for p in points])
        lines.append(f"| {k.removeprefix('eval_')} | {points[0][1]:.4f} | {points[-1][1]:.4f} |")
    for kind, label in (("bpb_", "bits per byte"), ("core_", "centred accuracy")):
        picked = {k: v for k, v in series.items() if k.startswith(kind)}
        if picked:
            p = line_plot(
                run_dir / "plots" / f"{stage}_during_{kind[:-1]}.png",
                picked,
                "tokens",
                label,
                f"{label} during {stage}",
            )
            lines += ["", f"![{label} during {stage}]({p.relative_to(run_dir)})"]
    return lines
