"""Fertility: tokens per whitespace word, the usual measure of how well a tokenizer fits a language.

A tokenizer trained mostly on English splits German compounds into many pieces; fertility
makes that visible per language, and is what tokenizer extension later tries to lower.
"""

from pathlib import Path

from lmforge.data import iter_documents


def fertility(tokenizer, inputs: list[str | Path], text_field: str = "text") -> dict[str, float]:
    """Tokens per word and bytes per token over the documents in `inputs`."""
    words = tokens = nbytes = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal tokens
        if batch:
            tokens += sum(len(ids) for ids in tokenizer(batch, add_special_tokens=False)["input_ids"])
            batch.clear()

    for text, _ in iter_documents(inputs, text_field):
        words += len(text.split())
        nbytes += len(text.encode("utf-8"))
        batch.append(text)
        if len(batch) >= 256:
            flush()
    flush()
    return {
        "words": words,
        "tokens": tokens,
        "tokens_per_word": tokens / max(words, 1),
        "bytes_per_token": nbytes / max(tokens, 1),
    }
