"""One chat turn: encode the history with the model's chat template and decode it through the
shared engine, streaming the reply to a callback.

The engine is driven step by step in the caller's own thread (no background thread to hang on),
and an exception inside the model ends the reply with a `GenerationError`. The reply ends at
the template's end-of-turn token (`<|im_end|>` for ChatML) or the tokenizer's EOS.
"""

import dataclasses

from lmforge.chat.template import encode_chat
from lmforge.engine import Engine, GenerationError, SamplingParams

__all__ = ["GenerationError", "make_engine", "reply"]


def make_engine(model, tokenizer) -> Engine:
    """An engine for one conversation at a time, stepped by `reply` itself."""
    return Engine(model, tokenizer, max_batch=1, start=False)


def reply(engine: Engine, history: list[dict], params: SamplingParams, on_text=None) -> str:
    """The assistant's answer to `history`; `on_text(piece)` sees it as it streams. An answer may
    take at most half the context (a small model's 256 tokens must still hold the question), and
    the oldest tokens are cut when the conversation no longer fits the rest."""
    if params.max_tokens > engine.context // 2:
        params = dataclasses.replace(params, max_tokens=max(1, engine.context // 2))
    ids = encode_chat(engine.tokenizer, history, add_generation_prompt=True)
    room = engine.context - params.max_tokens
    ids = ids[-room:] if len(ids) > room else ids
    pieces = []
    for piece in engine.stream(ids, params):
        pieces.append(piece)
        if on_text:
            on_text(piece)
    return "".join(pieces).strip()
