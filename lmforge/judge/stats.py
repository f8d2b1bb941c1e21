"""Scores per category and turn, and pairwise rates with a bootstrap interval."""

import numpy as np

from lmforge.judge.grade import pair_outcome
from lmforge.judge.questions import CATEGORIES


def single_table(rows: list[dict]) -> dict:
    """category -> {turn1, turn2, average, n}; failures (score -1) excluded, and counted."""
    table = {}
    for cat in [*CATEGORIES, "all"]:
        cells = {}
        for turn in (1, 2):
            s = [r["score"] for r in rows if r["turn"] == turn and r["score"] >= 1 and cat in ("all", r["category"])]
            cells[f"turn{turn}"] = float(np.mean(s)) if s else None
        both = [r["score"] for r in rows if r["score"] >= 1 and cat in ("all", r["category"])]
        cells["average"] = float(np.mean(both)) if both else None
        cells["n"] = len(both)
        if any(cat in ("all", r["category"]) for r in rows):
            table[cat] = cells
    return table


def pair_rates(rows: list[dict], samples: int = 1000, seed: int = 0) -> dict:
    outcomes = [o for o in map(pair_outcome, rows) if o is not None]
    n = len(outcomes)
    decided = [r for r in rows if pair_outcome(r) is not None]
    flipped = sum(r["g1_winner"] != r["g2_winner"] for r in decided)
    if not n:
        return {"pairs": 0, "failed": len(rows)}
    points = np.array([{"win": 1.0, "tie": 0.5, "loss": 0.0}[o] for o in outcomes])
    rng = np.random.default_rng(seed)
    boot = rng.choice(points, size=(samples, n), replace=True).mean(axis=1)
    return {
        "pairs": n,
        "failed": len(rows) - n,
        "win_rate": outcomes.count("win") / n,
        "loss_rate": outcomes.count("loss") / n,
        "tie_rate": outcomes.count("tie") / n,
        "adjusted_win_rate": float(points.mean()),
        "adjusted_win_rate_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "position_bias_rate": flipped / n,
    }
