"""The eval section of report.md: languages side by side, comparison, sweep, figures."""

from pathlib import Path

from lmforge.eval.aggregate import DEFINITION
from lmforge.eval.compare import comparison_table
from lmforge.recipe import EvalConfig
from lmforge.rundir.plots import grouped_bars, line_plot


def _fmt(metric: dict) -> str:
    err = metric["stderr"]
    return f"{metric['value']:.3f}" + ("" if err != err else f" ± {err:.3f}")  # err != err: NaN


def _task_table(tasks: list[dict]) -> list[str]:
    """One row per benchmark and metric, one column per language (LeoLM's side-by-side view)."""
    languages = list(dict.fromkeys(t["language"] for t in tasks))
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for t in tasks:
        for metric, value in t["metrics"].items():
            cells.setdefault((t["benchmark"], metric), {})[t["language"]] = _fmt(value)
    lines = ["| benchmark | metric | " + " | ".join(languages) + " |", "|---|---|" + "---:|" * len(languages)]
    lines += [f"| {b} | {m} | " + " | ".join(row.get(l, "") for l in languages) + " |" for (b, m), row in cells.items()]
    return lines


def _primary(metrics: dict[str, float]) -> float:
    """The number a chart shows for a task: acc_norm, as the harness's leaderboards do (exact_match
    for a generative task)."""
    return metrics.get("acc_norm", metrics.get("exact_match", next(iter(metrics.values()))))


def _clean(tasks: list[dict]) -> list[str]:
    lines = [
        "",
        "### Without contaminated items",
        "",
        "Items `lmforge decontaminate` found in the run's training data, left out (primary metric).",
        "",
        "| task | items | contaminated | full | clean |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in tasks:
        full = _primary({m: v["value"] for m, v in t["metrics"].items()})
        clean = _primary({m: v["value"] for m, v in t["clean"]["metrics"].items()})
        lines.append(f"| {t['task']} | {t['items']} | {t['items'] - t['clean']['items']} | {full:.3f} | {clean:.3f} |")
    return lines


def _aggregate(scores: dict[str, dict]) -> list[str]:
    lines = ["", "### One number per language", "", DEFINITION + ".", ""]
    lines += ["| language | tasks | centred accuracy | 95% interval |", "|---|---:|---:|---|"]
    lines += [
        f"| {lang} | {len(a['tasks'])} | {a['value']:.3f} | [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] |"
        for lang, a in scores.items()
    ]
    return lines


def _comparison(rows: list[dict], baseline: str) -> list[str]:
    return [
        "",
        f"### Compared with `{baseline}`",
        "",
        "Positive delta = better (accuracy up, bits per byte down). Paired bootstrap over items "
        "(documents for bits per byte); * marks p < 0.05.",
        "",
        *comparison_table(rows),
    ]


def _sweep(run_dir: Path, rows: list[dict]) -> list[str]:
    lines = ["", "### Checkpoint sweep", ""]
    bpb = {
        lang: ([r["tokens"] for r in rows], [r["bits_per_byte"][lang] for r in rows])
        for lang in (rows[0]["bits_per_byte"] if rows else {})
    }
    tasks = {
        name: ([r["tokens"] for r in rows], [_primary(r["tasks"][name]) for r in rows])
        for name in (rows[0]["tasks"] if rows else {})
    }
    core = {
        lang: ([r["tokens"] for r in rows], [r["aggregate"][lang] for r in rows])
        for lang in (rows[0].get("aggregate", {}) if rows else {})
    }
    names = [*bpb, *tasks]
    header = "| checkpoint | tokens | " + " | ".join(f"bpb {n}" if n in bpb else n for n in names) + " |"
    lines += [header, "|---|---:|" + "---:|" * len(names)]
    for r in rows:
        values = [r["bits_per_byte"][n] if n in bpb else _primary(r["tasks"][n]) for n in names]
        lines.append(f"| {r['checkpoint']} | {r['tokens'] or 0:,} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    if bpb:
        p = line_plot(
            run_dir / "plots" / "eval_sweep_bpb.png",
            bpb,
            "training tokens",
            "bits per byte",
            "held-out bits per byte over training",
            logx=True,
        )
        lines += ["", f"![bits per byte over training]({p.relative_to(run_dir)})"]
    if tasks:
        p = line_plot(
            run_dir / "plots" / "eval_sweep_tasks.png",
            tasks,
            "training tokens",
            "accuracy (acc_norm)",
            "task accuracy over training",
            logx=True,
        )
        lines += ["", f"![task accuracy over training]({p.relative_to(run_dir)})"]
    if core:
        p = line_plot(
            run_dir / "plots" / "eval_sweep_aggregate.png",
            core,
            "training tokens",
            "centred accuracy",
            "one number per language over training",
            logx=True,
        )
        lines += ["", f"![centred accuracy per language over training]({p.relative_to(run_dir)})"]
    return lines


def eval_report(run_dir: Path, results: dict, cfg: EvalConfig) -> str:
    lines = ["## Eval", "", f"Model `{results['model']}`."]
    scores = results["bits_per_byte"]
    if scores:
        plot = grouped_bars(
            run_dir / "plots" / "eval_bits_per_byte.png",
            {Path(results["model"]).name: {l: s["bits_per_byte"] for l, s in scores.items()}},
            "bits per byte (lower is better)",
            "held-out text by language",
        )
        lines += [
            "",
            "### Language modelling on held-out text",
            "",
            "| language | documents | bytes | tokens | bits/byte | perplexity (per token) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {lang} | {s['docs']} | {s['bytes']:,} | {s['tokens']:,} | {s['bits_per_byte']:.4f} | "
            f"{s['perplexity']:.3f} |"
            for lang, s in scores.items()
        ]
        lines += ["", f"![bits per byte]({plot.relative_to(run_dir)})"]
    tasks = results["tasks"]
    if tasks:
        scorer = (
            "lm-evaluation-harness"
            if cfg.harness
            else "lmforge (multiple choice by shared-context log-likelihood; generative tasks by the decode "
            "engine, answers extracted and normalised as each task says)"
        )
        if cfg.endpoint is not None:
            scorer = f"`{results['model']}` through its `/completions`"
        shots = sorted({t["num_fewshot"] for t in tasks}, key=str)
        lines += [
            "",
            "### Tasks by language",
            "",
            f"Scored by {scorer}; {', '.join(map(str, shots))}-shot; value ± standard error.",
            "",
        ]
        lines += _task_table(tasks)
        groups: dict[str, dict[str, float]] = {}
        for t in tasks:
            groups.setdefault(t["benchmark"], {})[t["language"]] = _primary(
                {m: v["value"] for m, v in t["metrics"].items()}
            )
        plot = grouped_bars(
            run_dir / "plots" / "eval_tasks.png", groups, "accuracy (acc_norm)", "tasks, languages side by side"
        )
        lines += ["", f"![tasks by language]({plot.relative_to(run_dir)})"]
        if results.get("aggregate"):
            lines += _aggregate(results["aggregate"])
        if any("clean" in t for t in tasks):
            lines += _clean(tasks)
        sample = [t for t in tasks if "sample" in t["benchmark"]]
        if sample:
            lines += ["", "The `*_sample` tasks are the small example sets shipped with lmforge, not benchmarks."]
    if "memorization" in results:
        m = results["memorization"]
        lines += [
            "",
            f"Memorization (Pythia): {m['memorized']:.1%} of {m['sequences']} training sequences are "
            f"continued exactly for {m['continuation']} tokens from a {m['prefix']}-token prefix "
            f"({m['token_match']:.1%} of continuation tokens match).",
        ]
    if "comparison" in results:
        lines += _comparison(results["comparison"], results["baseline"]["model"])
    if "sweep" in results:
        lines += _sweep(run_dir, results["sweep"])
    return "\n".join(lines)
