"""Several documents in one row without attention between them ("packing with document masks").

A row that holds several documents (pretraining windows cut from an EOS-joined stream; SFT rows
filled with whole conversations) normally lets each token attend to every earlier token of the
row, unrelated documents included. Here position ids restart at each document, and the batch goes
to the model with those `position_ids` and no `attention_mask`: transformers' packed-sequence path
then keeps attention inside each document. On CPU (SDPA, eager) it builds a block-diagonal causal
mask from the position ids; with FlashAttention-2 it turns them into `cu_seqlens` for the
variable-length kernel, and flex_attention gets a block mask. The batches are the same either
way; `use_attention` picks the kernel, and `varlen_sdpa` is the CPU's variable-length one.

A document's loss and gradients then equal those of the document alone (tested: per-conversation
loss of a packed row = the conversation alone; the gradient of one document's loss with respect
to another's embeddings is exactly zero).
"""

import bisect
import importlib.util
import random

import torch

from lmforge.chat.encoding import IGNORE
from lmforge.errors import ConfigError


def positions_after_eos(inputs: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Position ids that restart at 0 after every EOS (an EOS ends its document; the next token
    starts one). The first token of a row is position 0: a window's leading fragment of a document
    is treated as a document of its own."""
    length = inputs.shape[-1]
    index = torch.arange(length, device=inputs.device).expand_as(inputs)
    starts = torch.zeros_like(inputs, dtype=torch.bool)
    starts[..., 1:] = inputs[..., :-1] == eos_id
    start_index = torch.where(starts, index, torch.zeros_like(index)).cummax(dim=-1).values
    return index - start_index


def pack_rows(lengths: list[int], row_len: int, seed: int) -> list[list[int]]:
    """Item indices grouped into rows of at most `row_len` tokens, best fit decreasing: each item,
    longest first, goes into the fullest row it still fits in (ties in length broken by a seeded
    shuffle). Rows come out in a seeded random order. Items longer than `row_len` are the caller's
    to skip or cut beforehand."""
    if any(n > row_len for n in lengths):
        raise ValueError(f"an item is longer than the row length {row_len}")
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    order.sort(key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (space left, row), sorted: the fullest row that fits is a bisect away
    for i in order:
        k = bisect.bisect_left(free, (lengths[i], -1))
        if k == len(free):
            rows.append([i])
            space, row = row_len - lengths[i], len(rows) - 1
        else:
            space, row = free.pop(k)
            rows[row].append(i)
            space -= lengths[i]
        if space > 0:
            bisect.insort(free, (space, row))
    rng.shuffle(rows)
    return rows


def collate_packed(rows: list[list[tuple]], row_len: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Rows of (ids, labels) examples as one batch of `row_len` columns: input ids, labels (the
    first token of each example is never a target, so no loss crosses a boundary) and position ids
    restarting at each example; the unused tail of a row is padding with positions of its own and
    no labels. No attention mask: transformers reads the documents from the position ids."""
    ids = torch.full((len(rows), row_len), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), row_len), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), row_len), dtype=torch.long)
    for r, examples in enumerate(rows):
        at = 0
        for x, y in examples:
            n = len(x)
            ids[r, at : at + n], labels[r, at : at + n] = torch.tensor(x), torch.tensor(y)
            labels[r, at] = IGNORE
            positions[r, at : at + n] = torch.arange(n)
            at += n
        positions[r, at:] = torch.arange(row_len - at)
    return {"input_ids": ids, "labels": labels, "position_ids": positions}


def _attend_document(q, k, v, scaling, dropout: float, softcap: float | None, window: int | None):
    """Causal attention within one document [1, H, n, D]. Gemma's logit soft-capping, and a sliding
    window shorter than the document (Mistral, Gemma), act on the scores, which SDPA does not show:
    those documents take the eager arithmetic transformers' own eager attention does."""
    n, gqa = q.shape[2], k.shape[1] != q.shape[1]
    if not softcap and (not window or n <= window):
        return torch.nn.functional.scaled_dot_product_attention(
            q, k, v, dropout_p=dropout, scale=scaling, is_causal=True, enable_gqa=gqa
        )
    if gqa:
        k, v = (t.repeat_interleave(q.shape[1] // k.shape[1], dim=1) for t in (k, v))
    scores = (q @ k.transpose(2, 3)) * (scaling if scaling is not None else q.shape[-1] ** -0.5)
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    i = torch.arange(n, device=q.device)
    allowed = i[None, :] <= i[:, None]
    if window:
        allowed &= i[:, None] - i[None, :] < window
    probs = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.nn.functional.dropout(probs, p=dropout, training=dropout > 0) @ v


def varlen_sdpa(
    module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, position_ids=None, **kwargs
):
    """Variable-length attention for packed rows where no varlen kernel exists (CPU): causal SDPA
    over each document on its own, so the work is the sum of the documents' squared lengths
    instead of the row's, with no mask to build. The role FlashAttention-2's varlen kernel plays
    on CUDA; registered with transformers as "sdpa_varlen". Only for packed training batches: it
    sees no attention mask (transformers builds none for it), so padded batches must not use it.
    A layer's `softcap` and `sliding_window` (passed by Gemma's and Mistral's attention) are kept."""
    if position_ids is None or query.shape[2] != key.shape[2]:
        raise ValueError("sdpa_varlen attends within packed documents and needs position_ids without a KV cache")
    softcap, window = kwargs.get("softcap"), kwargs.get("sliding_window")
    positions = position_ids.expand(query.shape[0], -1)
    rows = []
    for b in range(query.shape[0]):
        # a document starts wherever the position does not go up by one (and at the row's start)
        starts = torch.nonzero(torch.diff(positions[b], prepend=positions[b, :1]) != 1).flatten().tolist()
        ends = [*starts[1:], query.shape[2]]
        documents = [
            _attend_document(*(t[b : b + 1, :, s:e] for t in (query, key, value)), scaling, dropout, softcap, window)
            for s, e in zip(starts, ends)
        ]
        rows.append(torch.cat(documents, dim=2))
    return torch.cat(rows).transpose(1, 2).contiguous(), None


# transformers refuses any kernel named "sdpa..." for a model that opts out of SDPA (Gemma 2, for
# its soft-capping), so the same function is registered a second time under a name without it
NO_SDPA_NAME = "varlen_documents"


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register("sdpa_varlen", varlen_sdpa)
    AttentionInterface.register(NO_SDPA_NAME, varlen_sdpa)


_register()


def use_attention(model, requested: str, device: torch.device, packed: bool) -> tuple[str, str]:
    """Set the model's attention kernel for training; returns (the kernel set, the one before it),
    so that the caller can put the model back for evaluation and generation. `auto` keeps the
    loaded one (SDPA) for padded batches; for packed rows it is FlashAttention-2's varlen kernel
    on CUDA when flash-attn is installed, else `sdpa_varlen` (above). Packed rows also work with
    `sdpa` (a block-diagonal mask over the whole row) and `flex_attention` (a block mask)."""
    before = model.config._attn_implementation
    wanted = requested
    if requested == "auto":
        flash = device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None
        wanted = ("flash_attention_2" if flash else "sdpa_varlen") if packed else before
    if wanted == "sdpa_varlen" and not packed:
        raise ConfigError("train.attention = sdpa_varlen works on packed rows only (sft.packing, train.document_mask)")
    if wanted == "sdpa_varlen" and not getattr(model, "_supports_sdpa", True):
        wanted = NO_SDPA_NAME
    if wanted != before:
        model.set_attn_implementation(wanted)
    return wanted, before
