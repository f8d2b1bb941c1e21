"""One chat turn: encode the history with the model's chat template, sample, stream the reply.

Generation runs in a background thread feeding transformers' `TextIteratorStreamer`, so the
caller prints tokens as they are produced. The reply ends at the template's end-of-turn token
(`<|im_end|>` for ChatML) or the tokenizer's EOS. Sampling options are checked before anything
runs, and an exception inside the thread ends the stream and is raised in the caller (a thread
that dies silently would leave the streamer waiting forever).
"""

from dataclasses import dataclass
from threading import Thread

import torch

from lmforge.errors import ConfigError, LmforgeError
from lmforge.tokenizer import encode_chat


class GenerationError(LmforgeError):
    """The model failed while generating; the stream was ended."""


@dataclass
class Sampling:
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    seed: int = 0

    def __post_init__(self):
        for name, ok, rule in (("max_new_tokens", self.max_new_tokens >= 1, "at least 1"),
                               ("temperature", self.temperature >= 0, "0 (greedy) or more"),
                               ("top_k", self.top_k >= 0, "0 (off) or more"),
                               ("top_p", 0 < self.top_p <= 1, "in (0, 1]")):
            if not ok:
                raise ConfigError(f"{name} must be {rule} (got {getattr(self, name)})")


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
    failure: list[BaseException] = []

    def run():
        try:
            model.generate(**kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            failure.append(e)
            streamer.end()  # wakes the reader at once instead of leaving it blocked

    thread = Thread(target=run, daemon=True)
    thread.start()
    pieces = []
    for piece in streamer:
        pieces.append(piece)
        if on_text:
            on_text(piece)
    thread.join()
    if failure:
        e = failure[0]
        raise GenerationError(f"generation failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    return "".join(pieces).strip()
