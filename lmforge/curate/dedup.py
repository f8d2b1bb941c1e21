"""Exact and near-duplicate removal as datatrove steps: normalised-text hashes and MinHash-LSH.

Near duplicates: each document becomes the set of its word n-grams (default 5, lower-cased,
punctuation stripped); `bands x rows` MinHash values (universal hashing mod 2^31 - 1, vectorised
in numpy) are cut into bands, and two documents sharing any band become a candidate pair. With
`verify_threshold` set, a candidate pair counts only if the exact Jaccard similarity of the two
n-gram sets reaches it, which keeps precision whatever the band settings. The first document of
each connected group is kept, the others are dropped with the reason "near_duplicate".

Choosing bands x rows: a pair of Jaccard similarity J is found with probability
1 - (1 - J^rows)^bands. FineWeb's 14 x 8 (the default) targets J >= ~0.75; light edits already
lower word-5-gram J a lot (7.5% of words changed -> J ~ 0.51, found 6% of the time by 14 x 8,
>99.9% by 32 x 2), so lower `rows` (with verification on) to catch near copies with small edits.

Both steps see all their documents before yielding (one datatrove task); a corpus larger than
memory needs datatrove's multi-stage MinhashDedup* steps instead.
"""

import hashlib
import re
import zlib
from collections import defaultdict
from contextlib import nullcontext
from itertools import combinations

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter

from lmforge.curate.drop import drop

PRIME = (1 << 31) - 1  # Mersenne prime: a, x < 2^31 keeps a * x + b < 2^63, no uint64 overflow
WORD = re.compile(r"\w+")


def units(text: str, code: bool = False) -> list[str]:
    """What dedup compares: lower-cased words of text, or code tokens (comments dropped,
    punctuation kept; lmforge/curate/code.py)."""
    if code:
        from lmforge.curate.code import code_tokens

        return code_tokens(text)
    return WORD.findall(text.lower())


def normalise(text: str, code: bool = False) -> str:
    return " ".join(units(text, code))


def ngram_hashes(text: str, n: int, code: bool = False) -> np.ndarray:
    """Stable 32-bit hashes of the word (or code token) n-grams (the whole text when shorter than n)."""
    words = units(text, code)
    grams = [" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))]
    return np.unique(np.array([zlib.crc32(g.encode()) for g in grams], dtype=np.uint64))


class ExactDedup(PipelineStep):
    name = "🫂 exact dedup"
    type = "🫂 - DEDUP"

    def __init__(self, exclusion_writer: DiskWriter | None = None, code: bool = False):
        super().__init__()
        self.exclusion_writer, self.code = exclusion_writer, code

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        seen = set()
        with self.exclusion_writer or nullcontext() as writer:
            for doc in data:
                self.stat_update("total")
                key = hashlib.blake2b(normalise(doc.text, self.code).encode(), digest_size=16).digest()
                if key in seen:
                    drop(self, doc, "exact_duplicate", writer, rank)
                    continue
                seen.add(key)
                self.stat_update("forwarded")
                yield doc


class MinHashDedup(PipelineStep):
    name = "🫂 MinHash-LSH near dedup"
    type = "🫂 - DEDUP"

    def __init__(
        self,
        bands: int = 14,
        rows: int = 8,
        ngram: int = 5,
        verify_threshold: float | None = None,
        seed: int = 1,
        exclusion_writer: DiskWriter | None = None,
        code: bool = False,
    ):
        super().__init__()
        self.bands, self.rows, self.ngram, self.verify, self.code = bands, rows, ngram, verify_threshold, code
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, PRIME, size=bands * rows, dtype=np.uint64)
        self.b = rng.integers(0, PRIME, size=bands * rows, dtype=np.uint64)
        self.exclusion_writer = exclusion_writer

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """Per permutation the minimum of (a * x + b) mod p over the n-gram hashes x: the modulo
        must actually wrap, or the permutation keeps the order of x and every minimum is the same."""
        return ((np.outer(self.a, hashes % PRIME) + self.b[:, None]) % PRIME).min(axis=1)

    def duplicates(self, texts: list[str]) -> dict[int, int]:
        """index -> index of the kept document it duplicates, for every document to drop."""
        grams = [ngram_hashes(t, self.ngram, self.code) for t in texts]
        buckets = defaultdict(list)
        for i, g in enumerate(grams):
            sig = self.signature(g)
            for band in range(self.bands):
                buckets[(band, sig[band * self.rows : (band + 1) * self.rows].tobytes())].append(i)
        parent = list(range(len(texts)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        checked = set()
        for members in buckets.values():
            for i, j in combinations(members, 2):
                if (i, j) in checked or root(i) == root(j):
                    continue
                checked.add((i, j))
                if self.verify is not None:
                    inter = len(np.intersect1d(grams[i], grams[j], assume_unique=True))
                    if inter / (len(grams[i]) + len(grams[j]) - inter) < self.verify:
                        continue
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)  # the earliest document is the one kept
        return {i: root(i) for i in range(len(texts)) if root(i) != i}

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        docs = list(data)
        with self.track_time():
            dupes = self.duplicates([d.text for d in docs])
        with self.exclusion_writer or nullcontext() as writer:
            for i, doc in enumerate(docs):
                self.stat_update("total")
                if i in dupes:
                    doc.metadata["duplicate_of"] = docs[dupes[i]].id
                    drop(self, doc, "near_duplicate", writer, rank)
                    continue
                self.stat_update("forwarded")
                yield doc
