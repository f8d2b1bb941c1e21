"""Bits per byte: a language-modelling score that does not depend on the tokenizer.

Perplexity per token rewards a tokenizer that cuts text into more, easier pieces; bits per
UTF-8 byte (total negative log-likelihood in bits / total bytes) compares checkpoints with
different tokenizers fairly, which tokenizer extension and language adaptation need.

Each document is scored on its own, preceded by EOS (how the trainer saw document starts),
so every token of the text is predicted; documents longer than the context are cut into
consecutive windows that each start where the previous one ended.
"""

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from lmforge.data import iter_documents
from lmforge.eval.shard import shard_map


def _windows(ids: list[int], context: int) -> list[list[int]]:
    """Split [eos] + ids into windows of at most context + 1 tokens overlapping by one."""
    return [ids[i : i + context + 1] for i in range(0, max(1, len(ids) - 1), context)]


@torch.no_grad()
def _window_nll(model, windows: list[list[int]], batch_size: int, eos: int) -> list[tuple[float, int]]:
    """(summed NLL, tokens scored) of each window."""
    out = []
    for i in range(0, len(windows), batch_size):
        group = windows[i : i + batch_size]
        width = max(len(w) for w in group)
        batch = torch.full((len(group), width), eos, dtype=torch.long)
        labels = torch.full((len(group), width - 1), -100, dtype=torch.long)
        for row, w in enumerate(group):
            batch[row, : len(w)] = torch.tensor(w)
            labels[row, : len(w) - 1] = torch.tensor(w[1:])
        # right padding needs no attention mask: causal attention never looks ahead at the pads
        logits = model(input_ids=batch[:, :-1].to(model.device)).logits.float()
        token_nll = F.cross_entropy(
            logits.transpose(1, 2), labels.to(model.device), ignore_index=-100, reduction="none"
        )
        out += zip(token_nll.sum(1).tolist(), (labels != -100).sum(1).tolist())
    return out


def bits_per_byte(
    model,
    tokenizer,
    inputs: list[str | Path],
    text_field: str = "text",
    batch_size: int = 8,
    max_docs: int | None = None,
) -> dict:
    """NLL of every document token; returns bits/byte, nats/token, perplexity, counts, and the
    bits and bytes of each document (paired bootstrap between models resamples documents)."""
    context = model.config.max_position_embeddings
    eos = tokenizer.eos_token_id
    windows, doc_bytes = [], []
    for text, _ in iter_documents(inputs, text_field):
        if max_docs is not None and len(doc_bytes) >= max_docs:
            break
        if not text:
            continue
        doc = len(doc_bytes)
        doc_bytes.append(len(text.encode("utf-8")))
        windows += [(doc, w) for w in _windows([eos, *tokenizer(text, add_special_tokens=False).input_ids], context)]
    windows.sort(key=lambda dw: len(dw[1]))  # similar lengths per batch: little padding
    scored = shard_map(lambda part: _window_nll(model, [w for _, w in part], batch_size, eos), windows)
    doc_nll = [0.0] * len(doc_bytes)
    for (doc, _), (row_nll, _) in zip(windows, scored):
        doc_nll[doc] += row_nll
    ntokens = sum(n for _, n in scored)
    nll, nbytes = sum(doc_nll), sum(doc_bytes)
    return {
        "docs": len(doc_bytes),
        "bytes": nbytes,
        "tokens": ntokens,
        "bits_per_byte": nll / math.log(2) / max(nbytes, 1),
        "nats_per_token": nll / max(ntokens, 1),
        "perplexity": math.exp(nll / max(ntokens, 1)),
        "doc_bits": [x / math.log(2) for x in doc_nll],
        "doc_bytes": doc_bytes,
    }
