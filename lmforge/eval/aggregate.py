"""One number per language: the CORE-style centred accuracy (DCLM, nanochat).

Each task's accuracy is rescaled so that chance is 0 and perfect is 1, `(acc - chance) / (1 -
chance)`, and the rescaled accuracies of a language's tasks are averaged. Chance is what guessing
scores: the mean of 1/choices for multiple choice, 0 for generative tasks. A task counts with its
primary metric (acc_norm for multiple choice, as the harness's leaderboards show it; exact_match
for generation; prompt-level strict accuracy for instruction following). The interval is a bootstrap over items, resampled within each task so every task
keeps its weight; a comparison resamples the same items for both models (paired), which is what
"did German improve and did English hold" needs: one delta per language with its interval.
"""

import numpy as np

DEFINITION = (
    "centred accuracy per language (CORE, as DCLM and nanochat define it): each task's accuracy "
    "rescaled so chance = 0 and perfect = 1, averaged over the language's tasks; 95% bootstrap "
    "interval over items"
)


def primary_metric(task: dict) -> str | None:
    per_item = task.get("per_item", {})
    return next((m for m in ("acc_norm", "acc", "exact_match", "prompt_strict") if m in per_item), None)


def _scorable(tasks: list[dict]) -> dict[str, list[dict]]:
    """The tasks that enter the aggregate, by language: with per-item scores and a known chance."""
    out: dict[str, list[dict]] = {}
    for t in tasks:
        if primary_metric(t) is not None and "chance" in t and t["chance"] < 1 and t["items"]:
            out.setdefault(t["language"], []).append(t)
    return out


def _centred(tasks: list[dict], index: list[np.ndarray] | None = None) -> float:
    values = []
    for k, t in enumerate(tasks):
        scores = np.asarray(t["per_item"][primary_metric(t)], dtype=float)
        mean = scores.mean() if index is None else scores[index[k]].mean()
        values.append((mean - t["chance"]) / (1 - t["chance"]))
    return float(np.mean(values))


def aggregate(tasks: list[dict], samples: int = 1000, seed: int = 0) -> dict[str, dict]:
    """language -> {value, ci95, tasks}: the centred accuracy of its tasks with a 95% interval."""
    rng = np.random.default_rng(seed)
    out = {}
    for lang, group in _scorable(tasks).items():
        boots = [_centred(group, [rng.integers(0, t["items"], t["items"]) for t in group]) for _ in range(samples)]
        low, high = np.percentile(boots, [2.5, 97.5])
        out[lang] = {"value": _centred(group), "ci95": [float(low), float(high)], "tasks": [t["task"] for t in group]}
    return out


def aggregate_delta(model: list[dict], baseline: list[dict], samples: int = 1000, seed: int = 0) -> dict[str, dict]:
    """language -> {model, baseline, delta, ci95, p_value} over the tasks both scored on the same
    items, with the paired bootstrap (the same resampled items for both models)."""
    rng = np.random.default_rng(seed)
    base = {t["task"]: t for t in baseline}
    out = {}
    for lang, group in _scorable(model).items():
        pairs = [(t, base[t["task"]]) for t in group if t["task"] in base and base[t["task"]]["items"] == t["items"]]
        pairs = [(a, b) for a, b in pairs if primary_metric(a) == primary_metric(b)]
        if not pairs:
            continue
        ours, theirs = [a for a, _ in pairs], [b for _, b in pairs]
        delta = _centred(ours) - _centred(theirs)
        deltas = []
        for _ in range(samples):
            index = [rng.integers(0, t["items"], t["items"]) for t in ours]
            deltas.append(_centred(ours, index) - _centred(theirs, index))
        deltas = np.asarray(deltas)
        p = 1.0 if delta == 0 else min(1.0, 2 * float(np.mean(deltas <= 0 if delta > 0 else deltas >= 0)))
        low, high = np.percentile(deltas, [2.5, 97.5])
        out[lang] = {
            "model": _centred(ours),
            "baseline": _centred(theirs),
            "delta": float(delta),
            "ci95": [float(low), float(high)],
            "p_value": p,
        }
    return out
