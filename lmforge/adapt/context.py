"""Context extension by RoPE scaling, and the passkey-retrieval check.

Four ways to stretch a rotary embedding trained on n positions to factor x n, each written into
the HF config (`rope_parameters`) as transformers reads it, so the saved model keeps it without
lmforge (and GGUF export carries linear, YaRN and Llama 3's into llama.cpp):
- `linear` (position interpolation, Chen et al. 2023) divides every position by the factor, so
  the long sequence is seen at angles the model knows; LeoLM used x2 (4k -> 8k) in its stage 2.
- `dynamic` (NTK-aware, as in transformers) raises the RoPE base as a sequence grows past the
  trained length and leaves shorter ones exactly as before. transformers takes the config's
  `max_position_embeddings` as the point where it starts, so that stays at n.
- `yarn` (Peng et al. 2023) interpolates low frequencies only, keeps high ones, and scales
  attention logits a little; Qwen2.5 and Qwen3 ship it for their long contexts.
- `llama3` (Llama 3.1's) divides low frequencies by the factor, keeps high ones and blends the band
  between.

Passkey retrieval (Mohtashami & Jaggi 2023) hides a 5-digit number in filler text at a random
depth and asks for it at the end; a model that uses its whole context repeats it.
"""

import random

import torch

from lmforge.errors import ConfigError

FILLER = {
    "en": "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ",
    "de": "Das Gras ist grün. Der Himmel ist blau. Die Sonne ist gelb. Los geht's. Hin und zurück. ",
}
NEEDLE = {
    "en": "The pass key is {key}. Remember it. {key} is the pass key. ",
    "de": "Der Schlüssel ist {key}. Merke ihn dir. {key} ist der Schlüssel. ",
}
QUESTION = {"en": "What is the pass key? The pass key is", "de": "Wie lautet der Schlüssel? Der Schlüssel ist"}


ROPE_SCALINGS = ("linear", "dynamic", "yarn", "llama3")


def apply_rope_scaling(config, kind: str, factor: float) -> int:
    """Let the model take `factor` x as many positions; returns the new context length."""
    if kind not in ROPE_SCALINGS:
        raise ConfigError(f"adapt.rope_scaling: '{kind}' is not one of {', '.join(ROPE_SCALINGS)}")
    params = dict(getattr(config, "rope_parameters", None) or {"rope_theta": getattr(config, "rope_theta", 1e4)})
    if "full_attention" in params:
        raise ConfigError("adapt.rope_scaling: models with a RoPE setting per layer type (Gemma 3) are not rescaled")
    old = config.max_position_embeddings
    params.update(rope_type=kind, factor=float(factor))
    if kind in ("yarn", "llama3"):
        params["original_max_position_embeddings"] = old
    if kind == "llama3":
        params.setdefault("low_freq_factor", 1.0)
        params.setdefault("high_freq_factor", 4.0)
    config.rope_parameters = params
    if kind != "dynamic":
        config.max_position_embeddings = int(old * factor)
    return int(old * factor)


def passkey_prompt(tokenizer, length: int, key: int, depth: float, lang: str = "en") -> list[int]:
    """Token ids of a prompt of about `length` tokens with the key at relative `depth`."""
    filler = tokenizer.encode(FILLER[lang], add_special_tokens=False)
    needle = tokenizer.encode(NEEDLE[lang].format(key=key), add_special_tokens=False)
    question = tokenizer.encode(QUESTION[lang], add_special_tokens=False)
    room = max(0, length - len(needle) - len(question))
    hay = (filler * (room // len(filler) + 1))[:room]
    at = int(depth * len(hay))
    return hay[:at] + needle + hay[at:] + question


def passkey_accuracy(model, tokenizer, length: int, trials: int = 10, seed: int = 0, lang: str = "en") -> float:
    """Share of trials whose greedy continuation (8 tokens, within `length`) holds the 5-digit key."""
    from transformers.utils import logging as hf_logging

    rng = random.Random(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # probing beyond the trained context is the point, not a mistake
    try:
        hits = sum(_retrieves(model, tokenizer, length, rng, lang) for _ in range(trials))
    finally:
        hf_logging.set_verbosity(verbosity)
    return hits / trials


@torch.no_grad()
def _retrieves(model, tokenizer, length: int, rng: random.Random, lang: str) -> bool:
    key = rng.randint(10000, 99999)
    ids = torch.tensor([passkey_prompt(tokenizer, length - 8, key, rng.random(), lang)], device=model.device)
    out = model.generate(
        ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id
    )
    return str(key) in tokenizer.decode(out[0, ids.shape[1] :]).replace(" ", "")[:8]
