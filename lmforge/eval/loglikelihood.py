"""Log-likelihood of each answer choice, with the context computed once per item.

lm-evaluation-harness scores every (context + choice) pair as its own sequence, so a
4-choice item with a long prompt runs that prompt through the model four times. Here the
contexts of a batch of items run once (left-padded, with explicit position ids), their KV
cache is gathered to one row per choice, and all choices of the batch run in a second,
short forward pass. Tokenization follows the harness exactly (`encode_pair`), so the
log-likelihoods are the same up to float rounding and the accuracies agree.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from lmforge.errors import DataError


@dataclass
class Encoded:
    context: list[int]
    choices: list[list[int]]


def encode_item(tokenizer, context: str, choices: list[str], delimiter: str) -> Encoded:
    """The harness's split, with the context encoded once for all choices: trailing spaces of the
    context move to each continuation, context + continuation is encoded whole, and a choice is
    what follows the context's own encoding."""
    stripped = context.rstrip()
    continuations = [context[len(stripped) :] + delimiter + c for c in choices]
    if not stripped:  # an empty prompt is conditioned on the BOS/EOS token alone
        return Encoded(
            [tokenizer.bos_token_id or tokenizer.eos_token_id],
            [tokenizer.encode(c, add_special_tokens=False) for c in continuations],
        )
    ctx = tokenizer.encode(stripped)
    return Encoded(ctx, [tokenizer.encode(stripped + c)[len(ctx) :] for c in continuations])


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """One (context, continuation) pair, split as `encode_item` splits each choice."""
    enc = encode_item(tokenizer, context, [continuation], "")
    return enc.context, enc.choices[0]


def max_length(model) -> int:
    """The harness's rule: the model's own context size."""
    return model.config.max_position_embeddings


@torch.no_grad()
def score_separately(model, enc: Encoded) -> list[float]:
    """Reference path, the harness's way: each context + choice as one sequence, left-truncated."""
    limit = max_length(model) + 1
    out = []
    for cont in enc.choices:
        ids = (enc.context + cont)[-limit:]
        logits = model(input_ids=torch.tensor([ids[:-1]], device=model.device)).logits[0, -len(cont) :]
        logp = F.log_softmax(logits.float(), dim=-1)
        out.append(float(logp.gather(1, torch.tensor(cont, device=model.device)[:, None]).sum()))
    return out


@torch.no_grad()
def _score_shared(model, batch: list[Encoded], pad_id: int) -> list[list[float]]:
    dev = model.device
    lens = torch.tensor([len(e.context) for e in batch], device=dev)
    width = int(lens.max())
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long, device=dev)
    mask = torch.zeros((len(batch), width), dtype=torch.long, device=dev)
    for row, e in enumerate(batch):  # left padding: every context ends in the last column
        ids[row, width - len(e.context) :] = torch.tensor(e.context, device=dev)
        mask[row, width - len(e.context) :] = 1
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    first = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True).logits[:, -1]
    first = F.log_softmax(first.float(), dim=-1)  # predicts each choice's first token

    owner = [row for row, e in enumerate(batch) for _ in e.choices]
    conts = [c for e in batch for c in e.choices]
    results = [float(first[row, c[0]]) for row, c in zip(owner, conts)]
    longest = max(len(c) for c in conts)
    if longest > 1:  # the rest of each choice, one row per choice, on top of its item's cache
        index = torch.tensor(owner, device=dev)
        cache.batch_select_indices(index)
        cids = torch.full((len(conts), longest - 1), pad_id, dtype=torch.long, device=dev)
        for row, c in enumerate(conts):  # right padding: causal attention never reads it
            cids[row, : len(c) - 1] = torch.tensor(c[:-1], device=dev)
        cmask = torch.cat([mask[index], torch.ones_like(cids)], dim=1)
        cpos = lens[index, None] + torch.arange(longest - 1, device=dev)
        logp = F.log_softmax(
            model(input_ids=cids, attention_mask=cmask, position_ids=cpos, cache=cache, use_cache=True).logits.float(),
            dim=-1,
        )
        for row, c in enumerate(conts):
            tail = torch.tensor(c[1:], device=dev)
            results[row] += float(logp[row, : len(c) - 1].gather(1, tail[:, None]).sum())
    out, i = [], 0
    for e in batch:
        out.append(results[i : i + len(e.choices)])
        i += len(e.choices)
    return out


def score_items(model, encoded: list[Encoded], batch_size: int = 16, pad_id: int = 0) -> list[list[float]]:
    """Log-likelihood of every choice of every item, in input order.

    Items are sorted by context length so a batch pads little. An item whose context plus
    longest choice exceeds the model's context takes the harness's truncating path instead.
    """
    limit = max_length(model) + 1
    scores: list[list[float] | None] = [None] * len(encoded)
    fits = []
    for i, e in enumerate(encoded):
        longest = max(map(len, e.choices))
        if longest >= limit:  # the harness refuses these too: no context would be left
            raise DataError(
                f"item {i}: a choice of {longest} tokens does not fit the model's {limit - 1}-token context"
            )
        if len(e.context) + max(map(len, e.choices)) > limit:
            scores[i] = score_separately(model, e)
        else:
            fits.append(i)
    fits.sort(key=lambda i: -len(encoded[i].context))
    for start in range(0, len(fits), batch_size):
        group = fits[start : start + batch_size]
        for i, s in zip(group, _score_shared(model, [encoded[i] for i in group], pad_id)):
            scores[i] = s
    return scores
