"""Evaluation on several processes: `torchrun --nproc-per-node N -m lmforge eval ...`.

Each process scores every N-th item of a task (multiple-choice log-likelihoods, generated replies,
held-out windows for bits per byte), and the per-item results are gathered back in item order on
every process, so the metrics, the bootstrap and the report are computed from exactly the values
one process would have produced (up to the batch a row shares, which only moves the last float
bits). Rank 0 writes the results. One process: the function runs on all items.

Sharding is opt-in (`sharded()`, which the eval and distill stages enter on every process): any
other caller under torchrun (adapt's before/after scores, evals during training on rank 0) scores
everything in its own process, since the other ranks are not there to gather with.
"""

import contextlib
from collections.abc import Callable

import torch.distributed as dist

_SHARDED = [False]


@contextlib.contextmanager
def sharded():
    """Split the items of every evaluation inside across torchrun's processes (all must enter)."""
    _SHARDED[0] = True
    try:
        yield
    finally:
        _SHARDED[0] = False


def world() -> tuple[int, int]:
    """(rank, world size) of this process when sharding; (0, 1) outside torchrun or `sharded()`."""
    if dist.is_available() and dist.is_initialized() and _SHARDED[0]:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_map(fn: Callable[[list], list], items: list) -> list:
    """`fn` over this process's share of `items` (every world-th, from its rank); the results of
    all processes, back in item order, on every process. `fn` returns one result per item."""
    rank, size = world()
    if size == 1:
        return list(fn(items))
    mine = list(fn(items[rank::size])) if items[rank::size] else []
    parts: list = [None] * size
    dist.all_gather_object(parts, mine)
    out: list = [None] * len(items)
    for r, part in enumerate(parts):
        out[r::size] = part
    return out
