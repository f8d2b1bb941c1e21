"""Per-request sampling parameters, checked once, and the sampler that applies them to one row.

Each request in a batch keeps its own temperature, top-k, top-p and random generator, so a
request seeded with 7 draws the same tokens whatever else is decoding beside it.
"""

from dataclasses import dataclass, field

import torch

from lmforge.engine.events import TokenLogprob
from lmforge.errors import ConfigError
from lmforge.recipe.schema import SAMPLING_DEFAULTS

# Below this temperature, float32 logits divided by it overflow to inf (NaN probabilities); the
# distribution is a point mass on the top token by then anyway, so such requests decode greedily.
GREEDY_BELOW = 1e-4
MAX_LOGPROBS = 20  # alternatives per token, as OpenAI's top_logprobs allows


@dataclass
class SamplingParams:
    max_tokens: int = SAMPLING_DEFAULTS["max_new_tokens"]
    temperature: float = SAMPLING_DEFAULTS["temperature"]  # 0 = greedy
    top_k: int = SAMPLING_DEFAULTS["top_k"]  # 0 = off
    top_p: float = SAMPLING_DEFAULTS["top_p"]
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    logprobs: int | None = None  # each generated token's log-prob and this many alternatives; None = off
    echo: bool = False  # the prompt's tokens' log-probs too (with `logprobs`); max_tokens may then be 0
    json_schema: dict | None = None  # the reply is JSON matching it (constraints.py); {"type": "object"}: any object

    def __post_init__(self):
        for name, ok, rule in (
            ("max_tokens", self.max_tokens >= (0 if self.echo else 1), "0 or more" if self.echo else "at least 1"),
            ("logprobs", self.logprobs is None or 0 <= self.logprobs <= MAX_LOGPROBS, f"0 to {MAX_LOGPROBS}"),
            ("temperature", self.temperature >= 0, "0 (greedy) or more"),
            ("top_k", self.top_k >= 0, "0 (off) or more"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
        ):
            if not ok:
                raise ConfigError(f"{name} must be {rule} (got {getattr(self, name)})")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ConfigError("stop strings must be non-empty strings")
        if self.temperature < GREEDY_BELOW:
            self.temperature = 0.0


def make_generator(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
    return g


def sample(logits: torch.Tensor, p: SamplingParams, generator: torch.Generator) -> int:
    """One token id from one row of logits (1-D, fp32)."""
    if p.temperature == 0:
        return int(logits.argmax())
    logits = logits / p.temperature
    if p.top_k and p.top_k < logits.numel():
        kth = torch.topk(logits, p.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if p.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        keep = sorted_probs.cumsum(0) - sorted_probs < p.top_p  # the smallest set reaching top_p
        keep[0] = True  # any top_p > 0 keeps the top token, even one below float32's resolution
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1, generator=generator))


def token_logprob(logits: torch.Tensor, token: int, top: int) -> TokenLogprob:
    """`token`'s log-probability under one row of raw logits, with the `top` most likely tokens'."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    best = torch.topk(logprobs, top) if top else None
    alternatives = () if best is None else tuple(zip(best.indices.tolist(), best.values.tolist()))
    return TokenLogprob(token, float(logprobs[token]), alternatives)


def prompt_logprobs(logits: torch.Tensor, prompt: list[int], top: int) -> tuple[TokenLogprob, ...]:
    """Each prompt token's log-probability given the tokens before it; `logits` [len(prompt), vocab]
    from one forward over the prompt. The first token has nothing before it: None."""
    logprobs = torch.log_softmax(logits[:-1].float(), dim=-1)
    chosen = logprobs.gather(1, torch.tensor(prompt[1:], dtype=torch.long)[:, None])[:, 0].tolist()
    if top:
        best = torch.topk(logprobs, top, dim=-1)
        alternatives = [tuple(zip(i, v)) for i, v in zip(best.indices.tolist(), best.values.tolist())]
    else:
        alternatives = [()] * len(chosen)
    rest = (TokenLogprob(t, lp, a) for t, lp, a in zip(prompt[1:], chosen, alternatives))
    return (TokenLogprob(prompt[0], None), *rest)
