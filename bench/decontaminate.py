"""Decontamination throughput and memory: lmforge's hashed n-gram index against a plain Python set.

Synthetic training documents (words drawn from a 30,000-word vocabulary, 60 words each, made
10,000 at a time outside the timing, never all held) stream past the index of every item of the shipped tasks (examples/tasks),
with one in 1,000 documents holding a planted item, so the hits are checked too. For each size:

    lmforge   NgramIndex (lmforge/text/ngrams.py): numpy window hashes, binary search, verified hits
    peer      the textbook way: every item's 13-gram word tuples in a Python set, each document's
              tuples looked up one by one (what a first decontamination script does)

Printed per size: documents/s of each, the ratio, the planted documents found (both must find every
one), and the peak resident memory of the process after each size (ru_maxrss): it must not grow with
the number of documents, since neither holds the text.

    python bench/decontaminate.py [--docs 100000 1000000] [--words 60]
"""

import argparse
import resource
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.decontaminate import eval_items  # noqa: E402
from lmforge.text.ngrams import NgramIndex, words  # noqa: E402


def documents(n: int, length: int, planted: list[str], seed: int = 0):
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(30_000)]
    for k in range(n):
        text = " ".join(vocab[i] for i in rng.integers(0, len(vocab), length))
        if k % 1000 == 0:
            text += " " + planted[(k // 1000) % len(planted)]
        yield text


class SetPeer:
    """Each item's n-grams as word tuples in one set (n = 13, or the item's length when shorter)."""

    def __init__(self, texts: list[str], n: int = 13, min_n: int = 6):
        self.by_n: dict[int, set] = {}
        for t in texts:
            ws = words(t)
            if len(ws) >= min_n:
                m = min(n, len(ws))
                self.by_n.setdefault(m, set()).update(tuple(ws[i : i + m]) for i in range(len(ws) - m + 1))

    def hit(self, text: str) -> bool:
        ws = words(text)
        return any(tuple(ws[i : i + m]) in grams for m, grams in self.by_n.items() for i in range(len(ws) - m + 1))


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--words", type=int, default=60)
    args = p.parse_args()
    specs = sorted(str(s) for s in (ROOT / "examples" / "tasks").glob("*.toml"))
    keys, texts = eval_items(specs)
    index, peer = NgramIndex(keys, texts), SetPeer(texts)
    planted = [t for t in texts if len(words(t)) >= 13][:50]
    print(f"index: {len(keys)} items from {len(specs)} tasks, {len(index):,} n-grams; peak {peak_mib():.0f} MiB")
    print("| documents | lmforge docs/s | set peer docs/s | ratio | planted found (lmforge / peer) | peak RSS MiB |")
    print("|---:|---:|---:|---:|---|---:|")
    for n in args.docs:
        found = peer_found = 0
        ours_s = peer_s = 0.0
        stream = documents(n, args.words, planted)
        while chunk := list(islice(stream, 10_000)):  # made outside the timing, 10,000 at a time
            start = time.perf_counter()
            found += sum(bool(index.matches(text)) for text in chunk)
            ours_s += time.perf_counter() - start
            start = time.perf_counter()
            peer_found += sum(peer.hit(text) for text in chunk)
            peer_s += time.perf_counter() - start
        ours, theirs = n / ours_s, n / peer_s
        want = (n + 999) // 1000
        print(
            f"| {n:,} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f}x | {found}/{want} / {peer_found}/{want} "
            f"| {peak_mib():.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
