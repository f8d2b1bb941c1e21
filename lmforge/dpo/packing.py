"""Both answers of a pair in one row behind a single copy of what they share ("prefix sharing",
Wang et al., 2024, arXiv:2410.20305).

A pair's chosen and rejected sequences start with the same prompt (and often the same first
answer tokens). In a causal model those shared tokens have the same hidden states in both, so a
row holds them once, then the chosen tail, then the rejected tail; a 4D attention mask keeps the
rejected tail from seeing the chosen one, and position ids restart the rejected tail where the
shared part ends. Each answer token's log-prob is read at the position that predicts it in its
own sequence, and logits are computed only at those positions. Per pair this spends
len(shared) + len(chosen tail) + len(rejected tail) tokens instead of twice the prompt, and no
vocabulary-wide logits over prompt tokens; the values equal two separate rows' (tested).
"""

import torch

from lmforge.chat.encoding import IGNORE


def shared_length(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def packed_length(pair: dict) -> int:
    (c, _), (r, _) = pair["chosen"], pair["rejected"]
    return len(c) + len(r) - shared_length(c, r)


def pack_pairs(
    pairs: list[dict], idx: list[int], pad_id: int, device, chosen_prompts: bool = False
) -> dict[str, torch.Tensor]:
    """One row per pair; `targets` lists (row, predicting position, token, sequence) for every
    answer token, sequence i < n the i-th chosen answer and n + i the i-th rejected one. With
    `chosen_prompts`, also every other token of the chosen sequence after its first (prompt and
    template) as sequence 2n + i: ORPO's and CPO's NLL runs over the whole chosen sequence."""
    n = len(idx)
    rows, positions, spans, targets = [], [], [], []
    for row, i in enumerate(idx):
        (c_ids, c_lab), (r_ids, r_lab) = pairs[i]["chosen"], pairs[i]["rejected"]
        s = shared_length(c_ids, r_ids)
        rows.append(c_ids + r_ids[s:])
        positions.append(list(range(len(c_ids))) + list(range(s, len(r_ids))))
        spans.append((s, len(c_ids)))  # the chosen tail, hidden from the rejected one
        for j, label in enumerate(c_lab):
            if label != IGNORE:
                targets.append((row, j - 1, label, row))
            elif chosen_prompts and j > 0:
                targets.append((row, j - 1, c_ids[j], 2 * n + row))
        for j, label in enumerate(r_lab):
            if label != IGNORE:
                k = j - 1
                targets.append((row, k if k < s else len(c_ids) + k - s, label, n + row))
    width = max(len(r) for r in rows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    pos = torch.zeros((n, width), dtype=torch.long)
    allowed = torch.zeros((n, width, width), dtype=torch.bool)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    for row, (tokens, p, (s, end)) in enumerate(zip(rows, positions, spans)):
        t = len(tokens)
        ids[row, :t] = torch.tensor(tokens)
        pos[row, :t] = torch.tensor(p)
        allowed[row, :t, :t] = causal[:t, :t]
        allowed[row, end:t, s:end] = False
    allowed |= torch.eye(width, dtype=torch.bool)  # padding rows see themselves: no all-masked softmax
    row, at, token, sequence = torch.tensor(targets, dtype=torch.long).reshape(-1, 4).T.contiguous().to(device)
    return {
        "input_ids": ids.to(device),
        "position_ids": pos.to(device),
        "allowed": allowed.to(device),
        "row": row,
        "at": at,
        "token": token,
        "sequence": sequence,
        "pairs": n,
        "sequences": (3 if chosen_prompts else 2) * n,
    }


def pair_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log p of each answer's tokens, their count), chosen answers first, then (with
    `chosen_prompts`) the rest of each chosen sequence; fp32."""
    dtype = next(model.parameters()).dtype
    mask = torch.zeros(batch["allowed"].shape, dtype=dtype, device=batch["allowed"].device)
    mask = mask.masked_fill(~batch["allowed"], torch.finfo(dtype).min)[:, None]
    keep = torch.unique(batch["at"])  # sorted: logits only where an answer token is predicted
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=mask,
        position_ids=batch["position_ids"],
        logits_to_keep=keep,
        use_cache=False,
    ).logits
    picked = logits[batch["row"], torch.searchsorted(keep, batch["at"])].float()
    logp = torch.log_softmax(picked, dim=-1).gather(-1, batch["token"].unsqueeze(-1)).squeeze(-1)
    sequences = batch["sequences"]
    sums = torch.zeros(sequences, dtype=logp.dtype, device=logp.device).index_add(0, batch["sequence"], logp)
    return sums, torch.bincount(batch["sequence"], minlength=sequences)
