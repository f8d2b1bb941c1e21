"""The pretrain section of report.md: a loss curve PNG and a table of the run's figures."""

from pathlib import Path

from lmforge.eval.during import during_report
from lmforge.recipe import TrainConfig
from lmforge.rundir import read_metrics, write_report_section
from lmforge.rundir.plots import line_plot
from lmforge.train.figures import efficiency_line


def last_per_step(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(tokens, value) for one metric, keeping the last row of each step (a resumed run logs some twice)."""
    by_step = {r["step"]: r for r in rows if key in r}
    steps = sorted(by_step)
    return [by_step[s]["tokens"] for s in steps], [by_step[s][key] for s in steps]


def write_pretrain_report(run_dir: Path, summary: dict, config, cfg: TrainConfig, world: int) -> None:
    rows = read_metrics(run_dir, "pretrain")
    train = last_per_step(rows, "loss")
    val = last_per_step(rows, "val_loss")
    plot = line_plot(
        run_dir / "plots" / "pretrain_loss.png",
        {"train": train, "validation": val},
        "tokens",
        "cross-entropy (nats/token)",
        "pretraining loss",
    )
    tps = [r["tok_per_s"] for r in rows if "tok_per_s" in r]
    steady = tps[len(tps) // 2 :] or [0.0]
    lines = [
        "## Pretrain",
        "",
        f"{config.model_type} model, {summary['params'] / 1e6:.2f}M parameters "
        f"({config.num_hidden_layers} layers, d={config.hidden_size}, {config.num_attention_heads} heads, "
        f"{config.num_key_value_heads} KV heads), {world} process(es), {summary['precision']} compute.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| steps | {summary['steps']} |",
        f"| tokens | {summary['tokens']:,} |",
        f"| final train loss | {summary['final_loss']:.4f} |",
        f"| final validation loss | {val[1][-1]:.4f} |" if val[1] else "| final validation loss | n/a |",
        f"| throughput (second half, median) | {sorted(steady)[len(steady) // 2]:,.0f} tokens/s |",
        f"| schedule | {cfg.schedule}, peak lr {cfg.lr}, warmup {cfg.warmup_steps} |",
        f"| checkpoint | `{summary['checkpoint']}` |",
        "",
        efficiency_line(summary),
        "",
        f"![pretraining loss]({Path(plot).relative_to(run_dir)})",
        *during_report(run_dir, rows, "pretrain"),
    ]
    write_report_section(run_dir, "pretrain", "\n".join(lines))
