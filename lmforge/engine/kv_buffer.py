"""The running batch's KV cache in preallocated tensors, so a decode step writes one column in
place instead of concatenating (and so copying) the whole cache in every layer.

Layout per layer: [rows, kv_heads, capacity, head_dim]. Rows are left-padded to a common length,
so every row writes its next token into the same column; the engine's attention mask hides the
padding. Capacity grows in blocks only when a step would run past it.
"""

import torch

BLOCK = 256  # columns added when the buffer is full: few reallocations, little unused memory


class KVBuffer:
    def __init__(self, kv: list[tuple[torch.Tensor, torch.Tensor]], limit: int):
        """`kv`: per layer (K, V) of shape [rows, heads, length, dim], e.g. a prefill's cache."""
        self.limit = limit  # the model's context: the buffer never grows past it
        self.length = kv[0][0].shape[2]
        self.k = [self._alloc(k, self.length + BLOCK) for k, _ in kv]
        self.v = [self._alloc(v, self.length + BLOCK) for _, v in kv]

    def _capacity(self, wanted: int, needed: int) -> int:
        """`wanted` columns, but never past the context, and never fewer than `needed`."""
        return max(min(wanted, self.limit), needed)

    def _alloc(self, x: torch.Tensor, capacity: int) -> torch.Tensor:
        buf = x.new_zeros(x.shape[0], x.shape[1], self._capacity(capacity, x.shape[2]), x.shape[3])
        buf[:, :, : x.shape[2]] = x
        return buf

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2]

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Views of the filled columns (no copy)."""
        return [(k[:, :, : self.length], v[:, :, : self.length]) for k, v in zip(self.k, self.v)]

    def next_column(self) -> int:
        """Reserve the column the coming step writes, growing the buffer if it is full."""
        if self.length == self.capacity:
            self.k = [self._alloc(k, self.capacity + BLOCK) for k in self.k]
            self.v = [self._alloc(v, self.capacity + BLOCK) for v in self.v]
        self.length += 1
        return self.length - 1

    def write(self, layer: int, column: int, k: torch.Tensor, v: torch.Tensor) -> None:
        self.k[layer][:, :, column : column + 1] = k
        self.v[layer][:, :, column : column + 1] = v

    def join(self, kv: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Add rows (prefilled requests, left-padded with zeros to one length), left-padding them or
        the batch to the longer length."""
        new, added = kv[0][0].shape[2], kv[0][0].shape[0]
        if new > self.length:  # shift the batch right so the new rows fit
            self.select(torch.arange(self.k[0].shape[0], device=self.k[0].device), drop=self.length - new)
        rows = self.k[0].shape[0] + added
        for i, (k, v) in enumerate(kv):
            for bufs, x in ((self.k, k), (self.v, v)):
                grown = bufs[i].new_zeros(rows, *bufs[i].shape[1:])
                grown[:-added] = bufs[i]
                grown[-added:, :, self.length - new : self.length] = x
                bufs[i] = grown

    def select(self, rows: torch.Tensor, drop: int = 0) -> None:
        """Keep `rows`; drop the first `drop` columns (negative: insert that many padding columns)."""
        length = self.length - drop
        for bufs in (self.k, self.v):
            for i, b in enumerate(bufs):
                kept = b[rows]
                out = kept.new_zeros(*kept.shape[:2], self._capacity(length + BLOCK, length), kept.shape[3])
                start = max(drop, 0)
                out[:, :, length - (self.length - start) : length] = kept[:, :, start : self.length]
                bufs[i] = out
        self.length = length
