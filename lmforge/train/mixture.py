"""Deterministic data mixtures: which source and which window every global sample reads.

Source choice is error diffusion ("largest deficit first"): sample g goes to the source whose
count lags its weight × (g + 1) the most. Every prefix of the run is then within one sample of
the requested share for every source, with no randomness to average out; within a source the
windows follow that source's own seeded `DataOrder`. Like `DataOrder`, the whole order is a
pure function of (seed, global sample index), so resume and multi-process slicing need only the
sample count. A single source with weight 1 reads exactly what `DataOrder` alone would.
"""

import numpy as np

from lmforge.data import PackedTokens
from lmforge.errors import ConfigError
from lmforge.train.data_order import DataOrder


class Mixture:
    def __init__(self, sources: dict[str, PackedTokens], weights: dict[str, float], seed: int):
        unknown = set(weights) - set(sources)
        if unknown:
            raise ConfigError(
                f"mix names unknown source(s): {', '.join(sorted(unknown))}; the sources are {', '.join(sources)}"
            )
        self.names = [n for n in sources if weights.get(n, 0) > 0]
        total = sum(weights[n] for n in self.names)
        self.weights = np.array([weights[n] / total for n in self.names])
        self.data = [sources[n] for n in self.names]
        # one seed per source, the first equal to `seed` so a single source matches DataOrder(seed)
        self.orders = [DataOrder(len(d), seed + 7919 * i) for i, d in enumerate(self.data)]
        self._at, self._counts = 0, np.zeros(len(self.names), dtype=np.int64)

    def _advance_to(self, g: int) -> None:
        if g < self._at:  # going back (a second rank's slice, a resume): replay from the start
            self._at, self._counts = 0, np.zeros_like(self._counts)
        while self._at < g:
            self._counts[self._pick(self._at)] += 1
            self._at += 1

    def _pick(self, g: int) -> int:
        return int(np.argmax(self.weights * (g + 1) - self._counts))

    def assignments(self, start: int, count: int) -> list[tuple[int, int]]:
        """(source index, window id) for global samples start .. start + count - 1."""
        self._advance_to(start)
        out = []
        for _ in range(count):
            s = self._pick(self._at)
            out.append((s, self.orders[s].indices(int(self._counts[s]), 1)[0]))
            self._counts[s] += 1
            self._at += 1
        return out

    def batch(self, start: int, count: int) -> np.ndarray:
        """Token windows [count, seq_len + 1] for those samples, in order."""
        return np.stack([self.data[s].window(w) for s, w in self.assignments(start, count)])

    def counts(self) -> dict[str, int]:
        """Samples drawn from each source so far (up to the last position read)."""
        return dict(zip(self.names, self._counts.tolist()))
