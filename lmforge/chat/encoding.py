"""Conversations as training examples: answer-only labels and padded batches.

Each conversation becomes one sequence (no packing): rows of a batch are padded, never
concatenated, so attention never crosses from one conversation into another without needing a
block-diagonal mask. The padding this costs is kept small by batching conversations of similar
length. Labels are the input ids on assistant tokens (their text and the end-of-turn marker,
so the model learns to stop) and -100 everywhere else: system and user turns, template markup,
padding. SFT trains on them; DPO scores the final answer of each side of a pair with them.
"""

import random
from collections import Counter

import torch

from lmforge.chat.template import render_chat
from lmforge.errors import ConfigError

IGNORE = -100


def encode(
    tokenizer, messages: list[dict], last_only: bool = False, tools: list | None = None
) -> tuple[list[int], list[int]]:
    """(input ids, labels) with labels only on assistant turns, found by rendering prefixes;
    `last_only`: only on the final assistant turn (DPO scores the answer, not the prompt's turns).
    `tools` are rendered as the template shows them to the model; an assistant turn that calls
    one is labelled like any other (the model learns to write the call), a tool's result is not."""
    text = render_chat(tokenizer, messages, tools=tools)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or (last_only and i != len(messages) - 1):
            continue
        prompt = render_chat(tokenizer, messages[:i], add_generation_prompt=True, tools=tools)
        upto = render_chat(tokenizer, messages[: i + 1], tools=tools)
        if not (upto.startswith(prompt) and text.startswith(upto)):
            raise ConfigError(
                "the chat template does not render a conversation's start as a prefix of the "
                "whole; cannot locate assistant turns"
            )
        spans.append((len(prompt), len(upto)))
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    # zero-width offsets are tokens the tokenizer added (BOS/EOS), never assistant text
    labels = [
        tok if b > a and any(s <= a < e for s, e in spans) else IGNORE
        for tok, (a, b) in zip(enc.input_ids, enc.offset_mapping)
    ]
    return enc.input_ids, labels


def encode_all(tokenizer, convs: list[dict], max_len: int, too_long: str) -> tuple[list[tuple], Counter, list[str]]:
    """Encode conversations; those longer than max_len are skipped or truncated, and counted."""
    out, counts, where = [], Counter(), []
    for c in convs:
        ids, labels = encode(tokenizer, c["messages"], tools=c.get("tools"))
        if len(ids) > max_len:
            counts[f"longer than {max_len} tokens ({too_long})"] += 1
            where.append(f"{c['where']}: {len(ids)} tokens")
            if too_long == "skip":
                continue
            ids, labels = ids[:max_len], labels[:max_len]
        if all(lab == IGNORE for lab in labels[1:]):
            counts["no assistant token left"] += 1
            where.append(f"{c['where']}: no assistant token within {max_len} tokens")
            continue
        out.append((ids, labels))
    return out, counts, where


def length_groups(lengths: list[int], batch_size: int, seed: int, epoch: int, together: int = 1) -> list[list[int]]:
    """One epoch's batches of indices: shuffle, sort within windows of 32 batches by length (little
    padding), shuffle runs of `together` neighbouring batches. A step's micro-batches (`together` =
    accumulation x processes) then have similar lengths, so no process waits long for a slower one
    at the gradient all-reduce."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 32
    groups = []
    for i in range(0, len(order), window):
        chunk = sorted(order[i : i + window], key=lambda j: lengths[j])
        groups += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    runs = [groups[i : i + together] for i in range(0, len(groups), together)]
    rng.shuffle(runs)
    return [g for run in runs for g in run]


def collate(rows: list[tuple], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (x, y) in enumerate(rows):
        ids[r, : len(x)], labels[r, : len(y)], mask[r, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
