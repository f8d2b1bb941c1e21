"""Deterministic sample order: which training window every process reads at every step.

The order is a pure function of (seed, global sample index): epoch e is a seeded permutation
of all windows. A step consumes `micro_batch * grad_accum * world_size` consecutive global
samples; micro-step m on rank r takes the slice starting at (m * world + r) * micro_batch.
So 2 processes with accumulation 1 read exactly the samples that 1 process with
accumulation 2 reads, and resuming only needs the count of samples already consumed.
"""

import numpy as np


class DataOrder:
    def __init__(self, num_windows: int, seed: int):
        self.n, self.seed = num_windows, seed
        self._epoch, self._perm = -1, np.empty(0, dtype=np.int64)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._epoch = epoch
        return self._perm

    def indices(self, start: int, count: int) -> list[int]:
        """Window ids for global samples start .. start + count - 1."""
        out = []
        for g in range(start, start + count):
            out.append(int(self._permutation(g // self.n)[g % self.n]))
        return out

    @staticmethod
    def micro_slice(samples_done: int, micro: int, rank: int, world: int, micro_batch: int) -> int:
        """First global sample index of micro-step `micro` on `rank`."""
        return samples_done + (micro * world + rank) * micro_batch


class EpochBatches:
    """Global batch index -> the item indices of that batch, for data whose batches are drawn anew
    each epoch (`of_epoch(epoch)`, a pure function of the seed and the epoch: sft's conversations,
    dpo's pairs). Every epoch has the same number of batches; one epoch is kept at a time."""

    def __init__(self, of_epoch):
        self.of_epoch = of_epoch
        self._epoch, self._batches = 0, of_epoch(0)
        self.per_epoch = len(self._batches)

    def __getitem__(self, index: int) -> list[int]:
        epoch = index // self.per_epoch
        if epoch != self._epoch:
            self._epoch, self._batches = epoch, self.of_epoch(epoch)
        return self._batches[index % self.per_epoch]
