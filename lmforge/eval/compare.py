"""Compare a model with a baseline on the same items: deltas, confidence, gain and forgetting.

Both models answer the same items (or score the same documents), so the comparison is paired:
resampling items with replacement and recomputing both scores on each resample keeps the
item difficulty shared, which gives far tighter intervals than two independent error bars
(Koehn 2004; the standard test for "did adaptation change this score"). A delta in the
target language is read as gain, one in the source language as forgetting (LeoLM's framing).
"""

import numpy as np


def paired_bootstrap(
    a: list[float], b: list[float], weights: list[float] | None = None, samples: int = 1000, seed: int = 0
) -> dict:
    """Delta of sum(a)/sum(w) - sum(b)/sum(w) (w = 1: a mean), its 95% interval and two-sided p.

    p is twice the share of resamples on the other side of zero than the observed delta,
    capped at 1; a delta of exactly zero everywhere has p = 1.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired bootstrap needs two equally long, non-empty score lists")
    w = np.ones_like(a) if weights is None else np.asarray(weights, dtype=float)
    delta = (a.sum() - b.sum()) / w.sum()
    idx = np.random.default_rng(seed).integers(0, a.size, size=(samples, a.size))
    deltas = (a[idx].sum(1) - b[idx].sum(1)) / w[idx].sum(1)
    if delta > 0:
        p = 2 * np.mean(deltas <= 0)
    elif delta < 0:
        p = 2 * np.mean(deltas >= 0)
    else:
        p = 1.0
    low, high = np.percentile(deltas, [2.5, 97.5])
    return {"delta": float(delta), "ci95": [float(low), float(high)], "p_value": float(min(1.0, p))}


def reading(language: str, target: str | None, source: str | None) -> str:
    if language == target:
        return "gain"
    if language == source:
        return "forgetting"
    return "change"


def verdict(row: dict) -> str:
    """A comparison row in words: 'gain +0.120', 'forgetting 0.030', 'no forgetting', 'change -0.010'."""
    delta = row["delta"]
    if row["reading"] == "forgetting":
        return f"forgetting {-delta:.3f}" if delta < 0 else "no forgetting"
    return f"{row['reading']} {delta:+.3f}"


def compare_results(
    model: dict, baseline: dict, target: str | None, source: str | None, samples: int = 1000, seed: int = 0
) -> list[dict]:
    """Rows for every task metric and every bits-per-byte language both results share.

    Deltas are oriented so that positive is better (accuracy up, bits per byte down); for a
    source-language row, forgetting is the negative of that delta.
    """
    rows = []
    base_tasks = {t["task"]: t for t in baseline.get("tasks", [])}
    for t in model.get("tasks", []):
        b = base_tasks.get(t["task"])
        if b is None or b["items"] != t["items"]:
            continue
        for metric, values in t["per_item"].items():
            if metric in b["per_item"]:
                rows.append(
                    {
                        "name": t["benchmark"],
                        "language": t["language"],
                        "metric": metric,
                        "model": t["metrics"][metric]["value"],
                        "baseline": b["metrics"][metric]["value"],
                        "reading": reading(t["language"], target, source),
                        **paired_bootstrap(values, b["per_item"][metric], samples=samples, seed=seed),
                    }
                )
    for lang, s in model.get("bits_per_byte", {}).items():
        b = baseline.get("bits_per_byte", {}).get(lang)
        if b is None or b["doc_bytes"] != s["doc_bytes"]:
            continue
        # better = fewer bits: delta of baseline minus model, per byte
        boot = paired_bootstrap(b["doc_bits"], s["doc_bits"], s["doc_bytes"], samples, seed)
        rows.append(
            {
                "name": "bits per byte",
                "language": lang,
                "metric": "bpb",
                "model": s["bits_per_byte"],
                "baseline": b["bits_per_byte"],
                "reading": reading(lang, target, source),
                **boot,
            }
        )
    return rows


def comparison_table(rows: list[dict], before: str = "baseline", after: str = "model") -> list[str]:
    """Markdown rows of `compare_results`, one line each, * marking p < 0.05."""
    lines = [
        f"| benchmark | language | metric | {before} | {after} | delta | 95% interval | p | reading |",
        "|---|---|---|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        star = "*" if r["p_value"] < 0.05 else ""
        lo, hi = r["ci95"]
        lines.append(
            f"| {r['name']} | {r['language']} | {r['metric']} | {r['baseline']:.3f} | {r['model']:.3f} | "
            f"{r['delta']:+.3f}{star} | [{lo:+.3f}, {hi:+.3f}] | {r['p_value']:.3f} | {verdict(r)} |"
        )
    return lines
