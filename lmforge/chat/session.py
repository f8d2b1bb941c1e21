"""One chat turn: encode the history with the model's chat template, sample, stream the reply.

Generation runs in a background thread feeding transformers' `TextIteratorStreamer`, so the
caller prints tokens as they are produced. The reply ends at the template's end-of-turn token
(`<|im_end|>` for ChatML) or the tokenizer's EOS.
"""

from dataclasses import dataclass
from threading import Thread

import torch

from lmforge.tokenizer import encode_chat


@dataclass
class Sampling:
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    seed: int = 0


def stop_ids(tokenizer) -> list[int]:
    ids = [tokenizer.eos_token_id]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(end, int) and end != tokenizer.unk_token_id:
        ids.append(end)
    return [i for i in ids if i is not None]


def reply(model, tokenizer, history: list[dict], sampling: Sampling, on_text=None) -> str:
    """The assistant's answer to `history`; `on_text(piece)` sees it as it streams."""
    from transformers import TextIteratorStreamer

    ids = torch.tensor([encode_chat(tokenizer, history, add_generation_prompt=True)], device=model.device)
    context = model.config.max_position_embeddings
    ids = ids[:, -(context - sampling.max_new_tokens):] if ids.shape[1] + sampling.max_new_tokens > context else ids
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    greedy = sampling.temperature == 0
    kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=sampling.max_new_tokens,
                  do_sample=not greedy, eos_token_id=stop_ids(tokenizer), streamer=streamer,
                  pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    if not greedy:
        kwargs.update(temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p)
    torch.manual_seed(sampling.seed)
    thread = Thread(target=model.generate, kwargs=kwargs, daemon=True)
    thread.start()
    pieces = []
    for piece in streamer:
        pieces.append(piece)
        if on_text:
            on_text(piece)
    thread.join()
    return "".join(pieces).strip()
