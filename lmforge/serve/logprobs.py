"""Token log-probabilities from the engine as OpenAI's two wire shapes.

Chat (`logprobs: true, top_logprobs: k`) gives one object per token with its text, its UTF-8 bytes
and its alternatives; the legacy completions API (`logprobs: k`, optionally `echo: true`) gives
parallel lists with each token's offset in the returned text. A token's text is what decoding it
alone gives; a token holding part of a character (byte-level BPE, or a `<0xXX>` byte fallback) has
its real bytes in `bytes`, so a client joining the bytes gets the exact text back.
"""

import re
from functools import cache

from lmforge.engine.events import TokenLogprob
from lmforge.serve.protocol import ChatLogprobs, ChatTokenLogprob, CompletionLogprobs, TopLogprob


@cache
def _byte_stand_ins() -> dict[str, int]:
    """GPT-2's byte-level alphabet, character -> byte: printable Latin-1 bytes stand for themselves,
    the other 68 for the characters from U+0100 on, in byte order."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + k): b for k, b in enumerate(others)}


class TokenText:
    """Each token id's text and bytes, decoded once."""

    def __init__(self, tokenizer):
        self.tokenizer, self.seen = tokenizer, {}

    def __call__(self, token: int) -> tuple[str, bytes]:
        if token not in self.seen:
            text = self.tokenizer.decode([token])
            raw = text.encode("utf-8")
            if "\ufffd" in text:  # part of a character: the piece's own bytes
                piece = self.tokenizer.convert_ids_to_tokens(token)
                stand_ins = _byte_stand_ins()
                if m := re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", piece):
                    raw = bytes([int(m[1], 16)])
                elif all(c in stand_ins for c in piece):
                    raw = bytes(stand_ins[c] for c in piece)
            self.seen[token] = (text, raw)
        return self.seen[token]


def chat_logprobs(entries: list[TokenLogprob], text_of: TokenText) -> ChatLogprobs:
    def top(token: int, logprob: float) -> TopLogprob:
        text, raw = text_of(token)
        return TopLogprob(token=text, logprob=logprob, bytes=list(raw))

    content = []
    for e in entries:
        text, raw = text_of(e.token)
        alternatives = [top(t, lp) for t, lp in e.top]
        content.append(ChatTokenLogprob(token=text, logprob=e.logprob, bytes=list(raw), top_logprobs=alternatives))
    return ChatLogprobs(content=content)


def completion_logprobs(
    entries: list[TokenLogprob], text_of: TokenText, offset: int = 0, ids: bool = False
) -> CompletionLogprobs:
    """The legacy lists; `offset` is where the first entry's token starts in the returned text.
    `ids`: tokens named `token_id:N` (vLLM's `return_tokens_as_token_ids`), exact where a token's
    text is ambiguous; offsets still count the text."""

    def name(token: int) -> str:
        return f"token_id:{token}" if ids else text_of(token)[0]

    out = CompletionLogprobs(tokens=[], token_logprobs=[], top_logprobs=[], text_offset=[])
    for e in entries:
        text = text_of(e.token)[0]
        out.tokens.append(name(e.token))
        out.token_logprobs.append(e.logprob)
        out.top_logprobs.append(None if e.logprob is None else {name(t): lp for t, lp in e.top})
        out.text_offset.append(offset)
        offset += len(text)
    return out
