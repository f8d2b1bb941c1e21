"""Accuracy on multiple-choice tasks, with the harness's definitions.

acc: the highest log-likelihood wins. acc_norm: log-likelihood divided by the choice's length
in characters. acc_bytes: divided by its length in UTF-8 bytes (fairer across scripts). Ties go
to the first choice (numpy argmax), and the standard error is the sample standard deviation
over items / sqrt(n), both as in lm-evaluation-harness.
"""

import math

import numpy as np

from lmforge.eval.loglikelihood import encode_item, score_items
from lmforge.eval.shard import shard_map
from lmforge.tasks import Item, Task, build_items


def item_correct(item: Item, lls: list[float]) -> dict[str, int]:
    lls = np.array(lls)
    chars = np.array([float(len(c)) for c in item.choices])
    nbytes = np.array([float(len(c.encode("utf-8"))) for c in item.choices])
    return {
        "acc": int(np.argmax(lls) == item.gold),
        "acc_norm": int(np.argmax(lls / chars) == item.gold),
        "acc_bytes": int(np.argmax(lls / nbytes) == item.gold),
    }


def stderr(values: list[int]) -> float:
    n = len(values)
    if n < 2:
        return float("nan")
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def result_header(task, items: int, num_fewshot: int | None) -> dict:
    """What every task result starts with, multiple-choice or generative."""
    spec = task.spec
    return {
        "task": spec.name,
        "benchmark": task.benchmark,
        "language": spec.language,
        "items": items,
        "num_fewshot": spec.num_fewshot if num_fewshot is None else num_fewshot,
    }


def evaluate_task(
    model,
    tokenizer,
    task: Task,
    num_fewshot: int | None = None,
    seed: int = 1234,
    limit: int | None = None,
    batch_size: int = 16,
    scorer=None,
) -> dict:
    """Score a task; returns metrics, their standard errors and per-item correctness (for bootstrap).
    `scorer(encoded)` gives each item's choice log-likelihoods another way (an endpoint's,
    eval/endpoint_scoring.py); by default the model scores them here."""
    items = build_items(task, num_fewshot, seed, limit)
    encoded = [encode_item(tokenizer, it.context, it.choices, it.delimiter) for it in items]
    if scorer is None:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        lls = shard_map(lambda part: score_items(model, part, batch_size, pad), encoded)  # torchrun: items split
    else:
        lls = scorer(encoded)
    per_item = [item_correct(it, ll) for it, ll in zip(items, lls)]
    spec = task.spec
    result = {
        **result_header(task, len(items), num_fewshot),
        "chance": float(np.mean([1 / len(it.choices) for it in items])),
        "metrics": {},
    }
    for m in spec.metrics:
        values = [p[m] for p in per_item]
        result["metrics"][m] = {"value": sum(values) / len(values), "stderr": stderr(values)}
    result["per_item"] = {m: [p[m] for p in per_item] for m in spec.metrics}
    result["loglikelihoods"] = lls
    return result
