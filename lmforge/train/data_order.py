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
