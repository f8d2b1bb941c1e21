"""Memorization as in the Pythia suite (Biderman et al., 2023).

A training sequence counts as memorized when, given its first `prefix` tokens, greedy
decoding reproduces the next `continuation` tokens exactly. Sequences are drawn with a fixed
seed from the packed training shards, so the figure is comparable across checkpoints.
"""

import numpy as np
import torch
from transformers import DynamicCache

from lmforge.data import PackedTokens


@torch.no_grad()
def greedy_continuation(model, prefix: torch.Tensor, length: int) -> torch.Tensor:
    """Argmax decoding with a KV cache: the prefix runs once, then one token per step."""
    cache = DynamicCache(config=model.config)
    logits = model(input_ids=prefix, cache=cache, use_cache=True).logits
    out = []
    for _ in range(length):
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        out.append(nxt)
        logits = model(input_ids=nxt, cache=cache, use_cache=True).logits
    return torch.cat(out, dim=1)


def memorization(
    model, tokens_dir, samples: int = 256, prefix: int = 32, continuation: int = 32, seed: int = 0, batch_size: int = 16
) -> dict:
    """Fraction of sampled training sequences reproduced exactly, and the per-token match rate."""
    data = PackedTokens(tokens_dir, prefix + continuation - 1)  # windows hold prefix + continuation tokens
    picks = np.random.default_rng(seed).choice(len(data), size=min(samples, len(data)), replace=False)
    exact = matched = 0
    for i in range(0, len(picks), batch_size):
        batch = torch.from_numpy(data.batch([int(j) for j in picks[i : i + batch_size]])).to(model.device)
        target = batch[:, prefix:]
        got = greedy_continuation(model, batch[:, :prefix], continuation)
        same = got == target
        exact += int(same.all(dim=1).sum())
        matched += int(same.sum())
    n = len(picks)
    return {
        "sequences": n,
        "prefix": prefix,
        "continuation": continuation,
        "memorized": exact / n,
        "token_match": matched / (n * continuation),
    }
