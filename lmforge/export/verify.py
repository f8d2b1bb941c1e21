"""Check an exported GGUF in llama.cpp itself (the `xllamacpp` wheel's server, in process, on a
private socket) against transformers on the source model: greedy continuations for unquantized types,
top-1 next-token agreement over many prefixes for quantized ones, and tokenization."""

import math
from pathlib import Path

from lmforge.errors import LmforgeError


def _llama_greedy(http, ids: list[int], n: int) -> list[int]:
    r = http.post(
        "/completion",
        json={
            "prompt": ids,
            "n_predict": n,
            "temperature": 0,
            "top_k": 1,
            "return_tokens": True,
            "cache_prompt": False,
        },
    )
    r.raise_for_status()
    return r.json()["tokens"]


def _until_stop(tokens: list[int], stops: set[int]) -> list[int]:
    """Up to and including the first end-of-generation token (llama.cpp ends there too)."""
    for i, t in enumerate(tokens):
        if t in stops:
            return tokens[: i + 1]
    return tokens


def verify_gguf(
    gguf_path: str | Path, model_ref: str | Path, prompts: list[str], new_tokens: int = 24, prefixes_per_prompt: int = 8
) -> dict:
    """Greedy agreement of llama.cpp on `gguf_path` with transformers on `model_ref`.

    `greedy_identical`: prompts whose whole `new_tokens`-token greedy continuation is identical.
    `top1_agreement`: share of prefixes (cut from prompt + continuation) where both pick the same next
    token; `disagreement_gaps`: where they do not, how many logits transformers puts llama.cpp's pick
    below its own (near 0: a near-tie that rounding flipped; large: the file computes something
    else). `tokenization_identical`: prompts llama.cpp tokenizes exactly as transformers does."""
    import torch

    from lmforge.engine import stop_token_ids
    from lmforge.engine.llamacpp import LlamaServer
    from lmforge.models import load_model_and_tokenizer

    if not prompts:
        raise LmforgeError("verify gguf: give at least one prompt")
    model, tok = load_model_and_tokenizer(model_ref, dtype=torch.float32)
    context = min(model.config.max_position_embeddings, 2048)
    llama = LlamaServer(gguf_path, slots=1, context_per_slot=context)
    http, stops = llama.http, stop_token_ids(tok)
    identical, agree, total, same_tokens = 0, 0, 0, 0
    gaps: list[float] = []
    with torch.inference_mode():
        for text in prompts:
            ids = tok(text)["input_ids"]
            n = min(new_tokens, context - len(ids) - 1)  # a tiny model's context may not hold the default
            if n < 1:
                raise LmforgeError(f"verify gguf: the prompt {text[:30]!r} fills the model's {context}-token context")
            r = http.post("/tokenize", json={"content": text, "add_special": True})
            r.raise_for_status()
            same_tokens += r.json()["tokens"] == ids
            x = torch.tensor([ids])
            want = _until_stop(
                model.generate(
                    x,
                    attention_mask=torch.ones_like(x),
                    max_new_tokens=n,
                    do_sample=False,
                    eos_token_id=sorted(stops),
                    pad_token_id=sorted(stops)[0],
                )[0, len(ids) :].tolist(),
                stops,
            )
            identical += _llama_greedy(http, ids, n) == want
            full = ids + want
            logits = model(torch.tensor([full])).logits[0]
            cuts = sorted(
                {max(1, len(ids) + (len(want) * k) // prefixes_per_prompt) for k in range(prefixes_per_prompt)}
            )
            for cut in cuts:
                total += 1
                theirs, ours = _llama_greedy(http, full[:cut], 1), int(logits[cut - 1].argmax())
                if theirs == [ours]:
                    agree += 1
                else:  # how far below transformers' top-1 llama.cpp's pick was there
                    gaps.append(float(logits[cut - 1][ours] - logits[cut - 1][theirs[0]]) if theirs else math.inf)
    llama.close()
    return {
        "prompts": len(prompts),
        "greedy_identical": identical,
        "prefixes": total,
        "top1_agreement": agree / total,
        "disagreement_gaps": gaps,
        "tokenization_identical": same_tokens,
    }


def perplexity_gguf(gguf_path: str | Path, texts: list[list[int]], context: int = 2048) -> dict:
    """Perplexity llama.cpp gives token lists (each starting with its BOS or first token): exp of the
    mean negative log-likelihood of the tokens after the first. llama.cpp's server reports
    probabilities only for what it samples, so each token is one step whose sampled token a logit
    bias pins to the text's; the log-probability it reports comes from the raw logits, before the
    bias, and the cached prefix makes each step one token of work. A token that ends inside a UTF-8
    character (a byte token) gets no report, so it is left out: which ones depends on the text
    only, so files of one model are compared on the same tokens (`scored` of `tokens`)."""
    from lmforge.engine.llamacpp import LlamaServer

    llama = LlamaServer(gguf_path, slots=1, context_per_slot=context)
    nll, scored, total = 0.0, 0, 0
    try:
        for ids in texts:
            ids = ids[:context]
            for i in range(1, len(ids)):
                total += 1
                r = llama.http.post(
                    "/completion",
                    json={
                        "prompt": ids[:i],
                        "n_predict": 1,
                        "n_probs": 1,
                        "temperature": 0,
                        "logit_bias": [[ids[i], 1e4]],
                        "cache_prompt": True,
                    },
                )
                r.raise_for_status()
                steps = r.json().get("completion_probabilities")
                if not steps:
                    continue
                if steps[0]["id"] != ids[i]:
                    raise LmforgeError(f"verify gguf: llama.cpp would not score token {ids[i]} at position {i}")
                nll -= steps[0]["logprob"]
                scored += 1
    finally:
        llama.close()
    if not scored:
        raise LmforgeError("verify gguf: perplexity needs texts of at least two tokens")
    return {"perplexity": math.exp(nll / scored), "scored": scored, "tokens": total}
