"""Context extension by linear RoPE scaling, and the passkey-retrieval check.

Linear scaling (position interpolation, Chen et al. 2023) divides every position by the factor
before the rotary embedding, so a model trained on 4k positions sees an 8k sequence at the
angles it knows; LeoLM used factor 2 (4k -> 8k) during its stage-2 pretraining. It is written
into the HF config (`rope_parameters`), so the saved model keeps it without lmforge.

Passkey retrieval (Mohtashami & Jaggi 2023) hides a 5-digit number in filler text at a random
depth and asks for it at the end; a model that uses its whole context repeats it.
"""

import random

import torch

FILLER = {
    "en": "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ",
    "de": "Das Gras ist grün. Der Himmel ist blau. Die Sonne ist gelb. Los geht's. Hin und zurück. ",
}
NEEDLE = {
    "en": "The pass key is {key}. Remember it. {key} is the pass key. ",
    "de": "Der Schlüssel ist {key}. Merke ihn dir. {key} ist der Schlüssel. ",
}
QUESTION = {"en": "What is the pass key? The pass key is", "de": "Wie lautet der Schlüssel? Der Schlüssel ist"}


def apply_linear_rope_scaling(config, factor: float) -> None:
    """Scale positions by 1/factor and let the model accept factor x as many positions."""
    params = dict(getattr(config, "rope_parameters", None) or {"rope_theta": getattr(config, "rope_theta", 1e4)})
    params.update(rope_type="linear", factor=float(factor))
    config.rope_parameters = params
    config.max_position_embeddings = int(config.max_position_embeddings * factor)


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
