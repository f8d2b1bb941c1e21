"""The running batch's KV cache in preallocated tensors, so a decode step writes one column in
place instead of concatenating (and so copying) the whole cache in every layer.

Layout per layer: [row capacity, kv_heads, column capacity, head_dim], of which the first `rows`
rows and `length` columns are in use. Rows are left-padded to a common length, so every row
writes its next token into the same column; the engine's attention mask hides the padding.
Columns grow in blocks when a step would run past them, rows double when requests join past
them. Requests join and leave every few steps, so neither copies the rows that stay: a joining
row is written into a free row, a leaving one's place is taken by a row from the end.
"""

import torch

BLOCK = 256  # columns added when the buffer is full: few reallocations, little unused memory


class KVBuffer:
    def __init__(self, kv: list[tuple[torch.Tensor, torch.Tensor]], limit: int, room: int = BLOCK):
        """`kv`: per layer (K, V) of shape [rows, heads, length, dim], e.g. a prefill's cache;
        `room`: columns to allocate past it."""
        self.limit = limit  # the model's context: the buffer never grows past it
        self.rows, self.length = kv[0][0].shape[0], kv[0][0].shape[2]
        self.k = [self._alloc(k, self.length + room, self.rows) for k, _ in kv]
        self.v = [self._alloc(v, self.length + room, self.rows) for _, v in kv]

    def _capacity(self, wanted: int, needed: int) -> int:
        """`wanted` columns, but never past the context, and never fewer than `needed`."""
        return max(min(wanted, self.limit), needed)

    def _alloc(self, x: torch.Tensor, capacity: int, rows: int, shift: int = 0) -> torch.Tensor:
        """A zeroed buffer (padding is never NaN, which masked weights of 0 would still spread) of
        `rows` rows and `capacity` columns, holding x's rows and columns `shift` columns in."""
        buf = x.new_zeros(rows, x.shape[1], self._capacity(capacity, x.shape[2] + shift), x.shape[3])
        buf[: x.shape[0], :, shift : shift + x.shape[2]] = x
        return buf

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2]

    def layer(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer i's K and V in use (views, no copy)."""
        return self.k[i][: self.rows, :, : self.length], self.v[i][: self.rows, :, : self.length]

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [self.layer(i) for i in range(len(self.k))]

    def next_column(self, n: int = 1) -> int:
        """Reserve the `n` columns the coming step writes (the first returned), growing the buffer
        if they do not fit."""
        if self.length + n > self.capacity:
            wanted = max(self.capacity + BLOCK, self.length + n)
            self.k = [self._alloc(k[: self.rows, :, : self.length], wanted, k.shape[0]) for k in self.k]
            self.v = [self._alloc(v[: self.rows, :, : self.length], wanted, v.shape[0]) for v in self.v]
        self.length += n
        return self.length - n

    def write(self, layer: int, column: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """K and V of shape [rows, heads, n, dim] into columns `column` onwards."""
        self.k[layer][: self.rows, :, column : column + k.shape[2]] = k
        self.v[layer][: self.rows, :, column : column + v.shape[2]] = v

    def join(self, kv: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Add rows (prefilled requests, left-padded with zeros to one length) after the batch's,
        left-padding them or the batch to the longer length."""
        new, added = kv[0][0].shape[2], kv[0][0].shape[0]
        if new > self.length:  # shift the batch right so the new rows fit
            self.select(None, drop=self.length - new)
        rows = self.rows + added
        for i, (k, v) in enumerate(kv):
            for bufs, x in ((self.k, k), (self.v, v)):
                if rows > bufs[i].shape[0]:
                    bufs[i] = self._alloc(
                        bufs[i][: self.rows, :, : self.length], self.capacity, max(rows, 2 * self.rows)
                    )
                slot = bufs[i][self.rows : rows]
                slot.zero_()
                slot[:, :, self.length - new : self.length] = x
        self.rows = rows

    def select(self, rows: torch.Tensor | None, drop: int = 0) -> None:
        """Keep `rows` in that order (None: all as they are); drop the first `drop` columns, or
        insert -drop padding columns. Only rows that change place are copied, and dropping is a
        view (the columns' memory is let go when the buffer next grows)."""
        if rows is not None:
            moved = rows != torch.arange(len(rows), device=rows.device)
            targets, sources = moved.nonzero()[:, 0], rows[moved]
            for bufs in (self.k, self.v):
                for b in bufs:
                    if len(targets):
                        b[targets] = b[sources]  # the sources are gathered before any is written
            self.rows = len(rows)
        length = self.length - drop
        for bufs in (self.k, self.v):
            for i, b in enumerate(bufs):
                if drop >= 0:
                    bufs[i] = b[:, :, drop:]
                else:
                    bufs[i] = self._alloc(b[: self.rows, :, : self.length], length + BLOCK, b.shape[0], -drop)
        self.length = length
