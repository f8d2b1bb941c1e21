"""Packed token shards: the on-disk format between `lmforge tokenize` and the trainer.

A dataset is a folder:
    meta.json              dtype, vocab size, eos id, token and document counts, shard list
    shard-00000.bin        raw token ids (uint16 when the vocabulary fits, else uint32)
    shard-00000.docs.npy   int64 start offset of every document inside that shard

Documents are concatenated with an EOS token after each one. The trainer reads fixed windows
of seq_len + 1 tokens through numpy memmaps, so a corpus larger than RAM streams from disk.
Windows never straddle two shards, which keeps each shard independently readable.
"""

import json
from pathlib import Path

import numpy as np

from lmforge.errors import DataError
from lmforge.rundir.files import atomic_write_text


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


class ShardWriter:
    """Append tokenized documents; rolls to a new shard every `shard_tokens` tokens."""

    def __init__(self, out_dir: str | Path, vocab_size: int, eos_id: int, shard_tokens: int = 50_000_000):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for old in self.out_dir.glob("shard-*"):
            old.unlink()
        self.dtype = token_dtype(vocab_size)
        self.vocab_size, self.eos_id, self.shard_tokens = vocab_size, eos_id, shard_tokens
        self.shards: list[dict] = []
        self._buf: list[np.ndarray] = []
        self._starts: list[int] = []
        self._len = 0

    def add(self, ids: list[int]) -> None:
        self._starts.append(self._len)
        arr = np.asarray(ids + [self.eos_id], dtype=self.dtype)
        self._buf.append(arr)
        self._len += len(arr)
        if self._len >= self.shard_tokens:
            self._flush()

    def _flush(self) -> None:
        if not self._len:
            return
        name = f"shard-{len(self.shards):05d}"
        np.concatenate(self._buf).tofile(self.out_dir / f"{name}.bin")
        np.save(self.out_dir / f"{name}.docs.npy", np.asarray(self._starts, dtype=np.int64))
        self.shards.append({"name": name, "tokens": self._len, "docs": len(self._starts)})
        self._buf, self._starts, self._len = [], [], 0

    def close(self, extra: dict | None = None) -> dict:
        """Write the last shard and meta.json; returns the meta."""
        self._flush()
        meta = {
            "format": "lmforge-packed-v1",
            "dtype": self.dtype.name,
            "vocab_size": self.vocab_size,
            "eos_id": self.eos_id,
            "tokens": sum(s["tokens"] for s in self.shards),
            "docs": sum(s["docs"] for s in self.shards),
            "shards": self.shards,
            **(extra or {}),
        }
        atomic_write_text(self.out_dir / "meta.json", json.dumps(meta, indent=2) + "\n")
        return meta


def read_meta(path: str | Path) -> dict:
    meta_path = Path(path) / "meta.json"
    if not meta_path.is_file():
        raise DataError(f"{path}: not a packed token dataset (no meta.json); run `lmforge tokenize` first")
    return json.loads(meta_path.read_text())


class PackedTokens:
    """Fixed-length training windows over a packed dataset.

    Window i is `seq_len + 1` consecutive tokens (inputs plus the shifted targets). Windows
    are laid end to end without overlap, so one epoch sees every token once.
    """

    def __init__(self, path: str | Path, seq_len: int):
        self.path, self.seq_len = Path(path), seq_len
        self.meta = read_meta(path)
        dtype = np.dtype(self.meta["dtype"])
        self._shards = []
        self._first_window = []  # global index of each shard's first window
        total = 0
        for s in self.meta["shards"]:
            mm = np.memmap(self.path / f"{s['name']}.bin", dtype=dtype, mode="r")
            n = (len(mm) - 1) // seq_len
            if n > 0:
                self._shards.append(mm)
                self._first_window.append(total)
                total += n
        if total == 0:
            raise DataError(f"{path}: {self.meta['tokens']} tokens is fewer than one window of seq_len {seq_len} + 1")
        self.num_windows = total

    def __len__(self) -> int:
        return self.num_windows

    def window(self, i: int) -> np.ndarray:
        """Tokens of window i as int64 (what embedding lookups want)."""
        s = int(np.searchsorted(self._first_window, i, side="right") - 1)
        start = (i - self._first_window[s]) * self.seq_len
        return np.asarray(self._shards[s][start : start + self.seq_len + 1], dtype=np.int64)

    def batch(self, indices: list[int]) -> np.ndarray:
        return np.stack([self.window(i) for i in indices])
