"""Word n-gram overlap between evaluation items and training text, without holding the text.

Text is normalised to lowercase word tokens (punctuation and whitespace fall away), as GPT-3's and
OLMo's decontamination do. Each word gets a stable 64-bit hash (BLAKE2b, cached per word), and an
n-gram's hash is a polynomial over its words' hashes, computed for every window of a document at
once in numpy. The index holds only the evaluation items' n-grams (thousands, sorted for binary
search); training documents stream past it one at a time, so memory does not grow with the
corpus. A hash hit is confirmed word by word, so a collision never flags an item.

An item's n is 13 words (the GPT-3/OLMo default), or its whole length when shorter; items under
`min_n` words are too short to check (a 4-word question matches everywhere) and are counted as such.
"""

import hashlib
import re

import numpy as np

WORD = re.compile(r"\w+")
_MULT = np.uint64(0x100000001B3)  # FNV-1's 64-bit prime: any odd multiplier spreads the windows


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


class WordHashes:
    """A stable 64-bit hash per word (the same in every process and run), cached."""

    def __init__(self):
        self.seen: dict[str, int] = {}

    def __call__(self, tokens: list[str]) -> np.ndarray:
        seen = self.seen
        try:
            return np.array(list(map(seen.__getitem__, tokens)), dtype=np.uint64)  # the common case, in C
        except KeyError:
            for w in tokens:
                if w not in seen:
                    seen[w] = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            return np.array(list(map(seen.__getitem__, tokens)), dtype=np.uint64)


_INVERSE = np.uint64(pow(int(_MULT), -1, 2**64))  # the multiplier is odd, so invertible modulo 2**64
_POWERS: list[np.ndarray] = [np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64)]  # B**k, B**-k


def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """B**k and B**-k for k < length (grown on demand, shared)."""
    if len(_POWERS[0]) < length:
        k = range(max(length, 2 * len(_POWERS[0])))
        _POWERS[0] = np.array([pow(int(_MULT), i, 2**64) for i in k], dtype=np.uint64)
        _POWERS[1] = np.array([pow(int(_INVERSE), i, 2**64) for i in k], dtype=np.uint64)
    return _POWERS[0], _POWERS[1]


def window_hashes(word_hashes: np.ndarray, n: int, prefix: np.ndarray | None = None) -> np.ndarray:
    """The hash of every n-word window, in order: sum of w[i+t] * B**(n-1-t). From prefix sums of
    w[j] * B**-j, every window of every n costs two vector operations, not n."""
    count = len(word_hashes) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    forward, _ = _powers(len(word_hashes) + 1)
    prefix = _prefix(word_hashes) if prefix is None else prefix
    # uint64 array arithmetic wraps modulo 2**64, which is the point
    return (prefix[n : n + count] - prefix[:count]) * forward[n - 1 : n - 1 + count]


def _prefix(word_hashes: np.ndarray) -> np.ndarray:
    _, inverse = _powers(len(word_hashes) + 1)
    out = np.zeros(len(word_hashes) + 1, dtype=np.uint64)
    np.cumsum(word_hashes * inverse[: len(word_hashes)], out=out[1:])
    return out


class NgramIndex:
    """The n-grams of evaluation items (`keys[i]`, `texts[i]`), looked up from training text."""

    def __init__(self, keys: list, texts: list[str], n: int = 13, min_n: int = 6):
        self.keys, self.hashes = keys, WordHashes()
        self.too_short: list = []
        self.items: list[list[str]] = []
        by_n: dict[int, list[tuple[int, int, int]]] = {}  # n -> (hash, item, start word)
        for i, text in enumerate(texts):
            ws = words(text)
            self.items.append(ws)
            if len(ws) < min_n:
                self.too_short.append(keys[i])
                continue
            m = min(n, len(ws))
            for start, h in enumerate(window_hashes(self.hashes(ws), m).tolist()):
                by_n.setdefault(m, []).append((h, i, start))
        rows = sorted((h, i, start, m) for m, entries in by_n.items() for h, i, start in entries)
        self.sizes_array = np.asarray(sorted(by_n), dtype=np.int64)  # the window lengths a document is cut into
        self.table = np.asarray([r[0] for r in rows], dtype=np.uint64)
        self.members = set(self.table.tolist())
        self.rows = [(r[1], r[2], r[3]) for r in rows]  # item, start word, n

    def __len__(self) -> int:
        return len(self.table)

    def matches(self, text: str) -> dict[int, str]:
        """Items whose n-gram occurs in `text`: item index -> the matching words (one example)."""
        ws = words(text)
        if not ws or not len(self.table):
            return {}
        hashed = self.hashes(ws)
        prefix, (forward, _) = _prefix(hashed), _powers(len(ws) + 1)
        sizes = self.sizes_array[self.sizes_array <= len(ws)]
        if not len(sizes):
            return {}
        starts = np.arange(len(ws))
        ends = starts[None, :] + sizes[:, None]  # every window of every length at once
        valid = ends <= len(ws)
        ends = np.minimum(ends, len(ws))
        flat = ((prefix[ends] - prefix[starts][None, :]) * forward[ends - 1])[valid]
        if self.members.isdisjoint(flat.tolist()):  # nearly every document: one set test in C
            return {}
        where_start = np.broadcast_to(starts, ends.shape)[valid]
        at = np.searchsorted(self.table, flat)
        hit = np.nonzero(self.table[np.minimum(at, len(self.table) - 1)] == flat)[0]
        found: dict[int, str] = {}
        for pos in hit.tolist():
            begin, k = int(where_start[pos]), int(at[pos])
            while k < len(self.table) and self.table[k] == flat[pos]:  # every item sharing this hash
                item, start, m = self.rows[k]
                if item not in found and self.items[item][start : start + m] == ws[begin : begin + m]:
                    found[item] = " ".join(ws[begin : begin + m])
                k += 1
        return found
