"""Recent prompts' KV caches, so a prompt that begins like an earlier one prefills only what is new.

Prompts repeat their beginnings: a few-shot task's items share worked examples (all of them with
fixed examples, GSM8K-style; often the first one or two when they are drawn per item), a served
chat resends its system prompt and whole history every turn. Prefill is the compute-bound part of
answering them (every prompt token through every weight), so the engine keeps the per-layer K, V of
the prompts it prefilled, least recently used first out within a byte budget, and starts a new
prompt from the longest prefix it shares with any kept one (vLLM's automatic prefix caching and
SGLang's radix cache do the same in blocks; here whole prompts, matched token by token).

Only the kept positions' K, V are reused, and a causal model's K, V at a position depend on the
tokens up to it alone, so the result is the same prompt read in two chunks: equal up to the
summation order of the matrix products (as a longer or shorter batch would be).
"""

from collections import OrderedDict

import torch

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (K, V) of shape [1, heads, length, dim]
MIN_SHARED = 16  # shorter shared beginnings (a BOS, a chat header) are not worth a lookup's tensors


class PrefixCache:
    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.entries: OrderedDict[tuple[int, ...], tuple[torch.Tensor, KV, int]] = OrderedDict()  # ids, K/V, bytes
        self.bytes = 0
        self.hits = self.reused_tokens = 0

    def shared(self, prompt: list[int]) -> int:
        """How many of the prompt's first tokens `longest` would give (0: none), without using it."""
        return self._best(prompt)[0]

    def _best(self, prompt: list[int]) -> tuple[int, tuple[int, ...] | None]:
        if not self.entries or len(prompt) <= MIN_SHARED:
            return 0, None
        ids = torch.tensor(prompt)
        best, best_key = 0, None
        for key, (kept, _, _) in self.entries.items():
            m = min(len(kept), len(ids) - 1)
            same = kept[:m] == ids[:m]
            n = m if bool(same.all()) else int(same.to(torch.int8).argmin())
            if n > best:
                best, best_key = n, key
        return (best, best_key) if best >= MIN_SHARED else (0, None)

    def longest(self, prompt: list[int]) -> tuple[int, KV | None]:
        """(n, K/V of the prompt's first n tokens) for the kept prompt sharing the longest beginning;
        n < len(prompt), so at least one token is left to run (its logits pick the first reply token)."""
        best, best_key = self._best(prompt)
        if best_key is None:
            return 0, None
        self.entries.move_to_end(best_key)
        self.hits, self.reused_tokens = self.hits + 1, self.reused_tokens + best
        kv = self.entries[best_key][1]
        return best, [(k[:, :, :best], v[:, :, :best]) for k, v in kv]

    def add(self, prompt: list[int], kv: KV) -> None:
        """Keep a prefilled prompt's K, V (the tensors are only read afterwards, never written)."""
        key = tuple(prompt)
        size = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
        if len(prompt) <= MIN_SHARED or size > self.budget or key in self.entries:
            return
        self.entries[key] = (torch.tensor(prompt), kv, size)
        self.bytes += size
        while self.bytes > self.budget:
            self.bytes -= self.entries.popitem(last=False)[1][2]
