"""The curate section of the run report: where every document went, and plots of it."""

import gzip
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lmforge.curate.accounting import BINS  # noqa: E402
from lmforge.rundir import write_report_section  # noqa: E402
from lmforge.rundir.plots import grouped_bars  # noqa: E402

MAX_LISTED = 20


def bad_inputs(out: Path) -> list[dict]:
    """Every bad record (reason, file:line, detail) from the always-written bad-input side files."""
    rows = []
    for path in sorted((out / "dropped" / "bad_input").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            rows += [json.loads(line)["metadata"] for line in f]
    return rows


def reasons_plot(path: Path, dropped: dict[str, int], kept: int) -> Path:
    labels, values = ["kept"] + list(dropped), [kept] + list(dropped.values())
    fig, ax = plt.subplots(figsize=(7.0, 0.35 * len(labels) + 1.2), dpi=110)
    ax.barh(labels[::-1], values[::-1], color=["#c44e52"] * len(dropped) + ["#4f9a55"])
    ax.set_xlabel("documents")
    ax.set_title("Where every document went")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def lengths_plot(path: Path, bins: dict[str, list[int]]) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    for name, counts in bins.items():
        ax.stairs(counts, BINS, label=f"{name} ({sum(counts)} docs)")
    used = [i for counts in bins.values() for i, c in enumerate(counts) if c]
    if used:
        ax.set_xlim(BINS[max(min(used) - 1, 0)], BINS[min(max(used) + 2, len(BINS) - 1)])
    ax.set_xscale("log")
    ax.set_xlabel("characters per document")
    ax.set_ylabel("documents")
    ax.set_title("Document lengths before and after curation")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_curate_report(run_dir: Path, out: Path, acc: dict) -> Path:
    plots = run_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    reasons_plot(plots / "curate_reasons.png", acc["dropped"], acc["kept"])
    lengths_plot(plots / "curate_lengths.png", acc["length_bins"])
    langs = sorted(
        set(acc["languages_detected"]) | set(acc["languages_kept"]), key=lambda k: -acc["languages_detected"].get(k, 0)
    )[:12]
    grouped_bars(
        plots / "curate_languages.png",
        {
            lang: {"detected": acc["languages_detected"].get(lang, 0), "kept": acc["languages_kept"].get(lang, 0)}
            for lang in langs
        },
        "documents",
        "Languages: detected vs kept",
    )
    dropped = sum(acc["dropped"].values())
    lines = [
        "## Curate",
        "",
        f"**{acc['read']:,} read = {acc['kept']:,} kept + {dropped:,} dropped** "
        f"({'balanced' if acc['balanced'] else 'NOT BALANCED'}); output `{out / 'data'}`, "
        f"dropped documents in `{out / 'dropped'}`.",
        "",
        "| reason | documents | share of read |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r} | {n:,} | {n / max(acc['read'], 1):.1%} |" for r, n in acc["dropped"].items()]
    lines += ["", "| language | detected | kept |", "|---|---:|---:|"]
    lines += [f"| {k} | {acc['languages_detected'].get(k, 0):,} | {acc['languages_kept'].get(k, 0):,} |" for k in langs]
    ignored = out / "ignored_files.txt"
    if ignored.exists():
        n = len(ignored.read_text().splitlines())
        lines += ["", f"{n} file(s) of unknown format in the input folders were not read: `{ignored}`."]
    if acc["pii_redacted"]:
        lines += ["", "PII redacted: " + ", ".join(f"{k} {v:,}" for k, v in acc["pii_redacted"].items())]
    bad = bad_inputs(out)
    if bad:
        lines += ["", f"Bad input ({len(bad)} records):", "", "| where | problem | detail |", "|---|---|---|"]
        lines += [f"| `{b['source']}` | {b['bad_input']} | {b['detail'][:80]} |" for b in bad[:MAX_LISTED]]
        if len(bad) > MAX_LISTED:
            lines.append(f"| … | {len(bad) - MAX_LISTED} more in `{out / 'dropped' / 'bad_input'}` | |")
    lines += [
        "",
        "![drop reasons](plots/curate_reasons.png) ![languages](plots/curate_languages.png)",
        "![lengths](plots/curate_lengths.png)",
    ]
    return write_report_section(run_dir, "curate", "\n".join(lines))
