"""LeoLM's MT-Bench table (categories x turn 1 / turn 2 / average, languages side by side), a bar
chart, pairwise rates, and the counts that say how far to trust them."""

from pathlib import Path

from lmforge.judge.questions import CATEGORIES


def _cell(x) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) else "–"


def score_table(summary: dict) -> list[str]:
    langs = [lang for lang, r in summary["languages"].items() if "single" in r]
    if not langs:
        return []
    head = "| category | " + " | ".join(f"{lang} turn 1 | {lang} turn 2 | {lang} avg" for lang in langs) + " |"
    lines = [head, "|---|" + "---:|" * 3 * len(langs)]
    for cat in [*CATEGORIES, "all"]:
        cells = []
        for lang in langs:
            row = summary["languages"][lang]["single"]["table"].get(cat, {})
            cells += [_cell(row.get("turn1")), _cell(row.get("turn2")), _cell(row.get("average"))]
        if any(c != "–" for c in cells) or cat == "all":
            lines.append(f"| {'**all**' if cat == 'all' else cat} | " + " | ".join(cells) + " |")
    return lines


def judge_report(summary: dict, plots: list[str]) -> str:
    j, e = summary["judge"], summary["endpoint"]
    lines = [
        "## Judge",
        "",
        f"`{summary['model_id']}` answered the questions; `{j['model']}` at `{j['endpoint']}` "
        "graded them (1–10, MT-Bench style; a judgment without a parseable rating is asked again once, then "
        "excluded and counted).",
        "",
        *score_table(summary),
        "",
    ]
    for lang, r in summary["languages"].items():
        facts = [f"{r['questions']} questions"]
        if r["skipped"]:
            facts.append(
                f"{len(r['skipped'])} skipped ("
                + "; ".join(f"{s['where']}: {s['reason']}" for s in r["skipped"][:5])
                + ")"
            )
        if "single" in r:
            s = r["single"]
            facts.append(
                f"{s['judgments']} judgments, {s['parse_failures']} parse failures, {s['endpoint_failures']} "
                f"endpoint failures, {s['retried']} retried, {s['language_penalties']} wrong-language answers"
            )
        if "pairwise" in r:
            p = r["pairwise"]
            if p.get("pairs"):
                ci = p["adjusted_win_rate_ci95"]
                facts.append(
                    f"pairwise vs `{p['baseline']}`: win {p['win_rate']:.1%}, loss {p['loss_rate']:.1%}, "
                    f"tie {p['tie_rate']:.1%}, adjusted win rate {p['adjusted_win_rate']:.1%} "
                    f"(95% CI {ci[0]:.1%}–{ci[1]:.1%}), position bias {p['position_bias_rate']:.1%}, "
                    f"{p['failed']} pairs failed"
                )
            else:
                facts.append(f"pairwise vs `{p['baseline']}`: no pair could be decided ({p['failed']} failed)")
        lines.append(f"- **{lang}**: " + "; ".join(facts) + ".")
    lines += [
        "",
        *[f"![judge]({p})" for p in plots],
        "",
        f"Judge endpoint: {e['requests']:,} requests, {e['answered_from_cache']:,} from the cache, {e['retries']:,} "
        f"retries, failures {e['failures'] or 'none'}, {e['prompt_tokens']:,} + {e['completion_tokens']:,} tokens"
        + (f", cost {e['cost']:.4f}" if e["cost"] is not None else "")
        + ".",
    ]
    return "\n".join(lines)


def bar_chart(run_dir: Path, summary: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    langs = [lang for lang, r in summary["languages"].items() if "single" in r]
    if not langs:
        return []
    cats = [c for c in CATEGORIES if any(c in summary["languages"][lang]["single"]["table"] for lang in langs)]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(langs)
    for i, lang in enumerate(langs):
        table = summary["languages"][lang]["single"]["table"]
        values = [table.get(c, {}).get("average") or 0 for c in cats]
        ax.bar(np.arange(len(cats)) + i * width, values, width, label=lang)
    ax.set_xticks(np.arange(len(cats)) + width * (len(langs) - 1) / 2, cats, rotation=30)
    ax.set_ylim(0, 10)
    ax.set_ylabel("judge score (1-10)")
    ax.set_title(f"{summary['model_id']} judged by {summary['judge']['model']}")
    ax.legend()
    fig.tight_layout()
    out = run_dir / "plots" / "judge.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return ["plots/judge.png"]
