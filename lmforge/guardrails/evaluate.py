"""`lmforge guardrails check`: precision and recall per topic on labelled prompts, and per topic the
threshold at which they would balance.

Labelled prompts are JSONL records {"text": ..., "topic": NAME or null}; null means the message
belongs to no topic (it should pass a block-list and be refused by an allow-list). A prediction is
the topic that decided (None when none did). The balancing threshold of a topic is found by
sweeping its threshold over the observed scores with the other topics fixed, and taking the value
where |precision - recall| is smallest (ties: the higher F1). Accuracy is over the refuse/pass
decision: a message of a blocked topic (or, in allow mode, of no listed topic) should be refused.
"""

from dataclasses import replace

import numpy as np

from lmforge.data import iter_records
from lmforge.errors import DataError
from lmforge.guardrails.rails import Rails


def read_labelled(path) -> tuple[list[str], list[str | None]]:
    texts, labels = [], []
    for record, where in iter_records([path]):
        if not isinstance(record.get("text"), str) or not record["text"].strip():
            raise DataError(f'{where}: needs a non-empty "text"')
        texts.append(record["text"])
        labels.append(record.get("topic"))
    return texts, labels


def precision_recall(predicted: list[str | None], labels: list[str | None], topic: str) -> tuple[float, float, int]:
    tp = sum(p == topic and y == topic for p, y in zip(predicted, labels))
    pp = sum(p == topic for p in predicted)
    support = sum(y == topic for y in labels)
    return (tp / pp if pp else 1.0), (tp / support if support else 1.0), support


def _action(rails: Rails, name: str) -> str:
    return next(t.action for t in rails.topics if t.name == name)


def predict(rails: Rails, scores: np.ndarray) -> list[str | None]:
    return [rails.decide(row).topic for row in scores]


def check(rails: Rails, texts: list[str], labels: list[str | None]) -> dict:
    names = {t.name for t in rails.topics}
    unknown = sorted({y for y in labels if y is not None and y not in names})
    if unknown:
        raise DataError(f"labelled prompts name unknown topic(s) {unknown}; the rails have {sorted(names)}")
    scores = rails.scores(texts)
    decisions = [rails.decide(row) for row in scores]
    predicted = [d.topic for d in decisions]
    rows = []
    for j, topic in enumerate(rails.topics):
        p, r, n = precision_recall(predicted, labels, topic.name)
        if n == 0:  # no labelled prompt of this topic (typically an allowed topic): nothing to measure
            continue
        best = None
        for threshold in sorted(set(np.round(scores[:, j], 4).tolist())):
            trial = replace(
                rails, topics=[replace(t, threshold=threshold) if k == j else t for k, t in enumerate(rails.topics)]
            )
            tp, tr, _ = precision_recall(predict(trial, scores), labels, topic.name)
            key = (abs(tp - tr), -(2 * tp * tr / (tp + tr) if tp + tr else 0))
            if best is None or key < best[0]:
                best = (key, threshold, tp, tr)
        rows.append(
            {
                "topic": topic.name,
                "action": topic.action,
                "threshold": topic.threshold,
                "support": n,
                "precision": p,
                "recall": r,
                "balanced_threshold": best[1],
                "balanced_precision": best[2],
                "balanced_recall": best[3],
            }
        )
    refused = [not d.allowed for d in decisions]
    should = [(y is None and rails.mode == "allow") or (y is not None and _action(rails, y) == "block") for y in labels]
    return {
        "topics": rows,
        "accuracy": sum(a == b for a, b in zip(refused, should)) / len(labels),
        "macro_precision": float(np.mean([r["precision"] for r in rows])),
        "macro_recall": float(np.mean([r["recall"] for r in rows])),
    }
