"""Preference pairs: a prompt (one or more turns), a chosen and a rejected answer.

    plain           {"prompt": str, "chosen": str, "rejected": str}
    conversational  {"prompt": [messages], "chosen": [messages] | str, "rejected": ..., "tools"?: [...]};
                    UltraFeedback's binarized layout, where chosen/rejected are whole conversations, is read
                    the same way (the prompt is their shared start when "prompt" is a plain string or
                    missing). Turns may hold tool calls and tool results, and an answer may be a call
                    (chat/tools.py): a model learns to prefer the right call as it learns a better text.
    hh              {"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": ...} (Anthropic HH-RLHF)
    unpaired        {"prompt": str | [messages], "completion": str | [messages], "label": true | false}
                    (TRL's unpaired layout, thumbs up/down feedback): KTO only. KTO also reads pairs,
                    each as a desirable and an undesirable answer to its prompt.

A record missing a field is an error naming file:line; empty or identical answers, and pairs too
long for the context, are counted with file:line and skipped (or truncated, as configured).
Answers are assistant messages, encoded exactly as `sft` encodes an assistant turn: same template
(with the pair's tools), same label mask.
"""

import random
import re
from collections import Counter

from lmforge.chat.encoding import IGNORE, encode
from lmforge.chat.tools import template_messages
from lmforge.data import iter_records
from lmforge.errors import DataError
from lmforge.recipe import PreferenceDataset

HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


def detect(record: dict) -> str:
    if "completion" in record and "label" in record:
        return "unpaired"
    if "chosen" in record and "prompt" not in record and isinstance(record["chosen"], str):
        return "hh"
    if isinstance(record.get("prompt"), list) or isinstance(record.get("chosen"), list):
        return "conversational"
    return "plain"


def _answer(value) -> dict:
    """The final assistant message of a str or a messages list (it may be a tool call)."""
    if isinstance(value, str):
        return {"role": "assistant", "content": value}
    if isinstance(value, list) and value and value[-1].get("role") == "assistant":
        return template_messages(value[-1:])[0]
    raise ValueError("an answer must be a string or a messages list ending with the assistant")


def _said(answer: dict) -> str:
    """What an answer says, to tell an empty answer and two identical ones."""
    return answer["content"].strip() + "".join(str(c["function"]) for c in answer.get("tool_calls", []))


def _hh(text: str) -> list[dict]:
    parts = HH_TURN.split(text if text.startswith("\n\n") else "\n\n" + text)  # ["", role, text, role, ...]
    turns = [
        {"role": "user" if parts[i] == "Human" else "assistant", "content": parts[i + 1].strip()}
        for i in range(1, len(parts) - 1, 2)
    ]
    if not turns or turns[-1]["role"] != "assistant":
        raise ValueError("an HH conversation must end with an Assistant turn")
    return turns


def to_pair(record: dict, fmt: str) -> tuple[list[dict], dict, dict]:
    """(prompt messages, chosen answer, rejected answer)."""
    for key in ("chosen", "rejected") + (("prompt",) if fmt == "plain" else ()):
        if key not in record:
            raise KeyError(key)
    if fmt == "hh":
        chosen, rejected = _hh(record["chosen"]), _hh(record["rejected"])
        if chosen[:-1] != rejected[:-1]:
            raise ValueError("chosen and rejected do not share their prompt")
        return chosen[:-1], chosen[-1], rejected[-1]
    if fmt == "plain":
        return [{"role": "user", "content": record["prompt"]}], _answer(record["chosen"]), _answer(record["rejected"])
    prompt = record.get("prompt")
    if isinstance(prompt, list):
        messages = prompt
    elif isinstance(record["chosen"], list) and len(record["chosen"]) > 1:
        messages = record["chosen"][:-1]  # UltraFeedback: the conversation before the answer
    else:
        messages = [{"role": "user", "content": prompt}]
    return template_messages(messages), _answer(record["chosen"]), _answer(record["rejected"])


def to_unpaired(record: dict) -> tuple[list[dict], dict, bool]:
    """(prompt messages, answer, desirable) of an unpaired record."""
    for key in ("prompt", "completion", "label"):
        if key not in record:
            raise KeyError(key)
    if not isinstance(record["label"], bool):
        raise ValueError(f"label must be true or false, not {record['label']!r}")
    prompt = record["prompt"]
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    return template_messages(messages), _answer(record["completion"]), record["label"]


def read_pairs(ds: PreferenceDataset, unpaired: bool = False) -> tuple[list[dict], Counter, list[str]]:
    """The set's pairs; with `unpaired` (KTO), its answers one by one instead: an unpaired record
    as it is, a pair as a desirable (chosen) and an undesirable (rejected) answer."""
    pairs, skipped, where_list = [], Counter(), []
    for record, where in iter_records([ds.path]):
        fmt = ds.format if ds.format != "auto" else detect(record)
        if fmt == "unpaired" and not unpaired:
            raise DataError(
                f'{where}: an unpaired answer (prompt/completion/label): only dpo.loss = "kto" trains on them'
            )
        try:
            if fmt == "unpaired":
                prompt, answer, desirable = to_unpaired(record)
                chosen, rejected = (answer, None) if desirable else (None, answer)
            else:
                prompt, chosen, rejected = to_pair(record, fmt)
        except KeyError as e:
            raise DataError(f"{where}: preference pair without '{e.args[0]}'") from None
        except (ValueError, TypeError, AttributeError) as e:
            raise DataError(f"{where}: not a {fmt} preference pair ({e})") from None
        said = [_said(a) for a in (chosen, rejected) if a is not None]
        reason = (
            "empty answer" if not all(said) else "identical answers" if len(said) == 2 and said[0] == said[1] else None
        )
        language = record.get("language") or record.get("lang") or ds.language
        if reason is None and ds.languages and language not in ds.languages:
            reason = "other language"
        if reason:
            skipped[reason] += 1
            where_list.append(f"{where}: {reason}")
            continue
        common = {"prompt": prompt, "tools": record.get("tools"), "language": language, "where": where}
        if not unpaired:
            pairs.append({**common, "chosen": chosen, "rejected": rejected})
            continue
        pairs += [{**common, "answer": a, "desirable": ok} for a, ok in ((chosen, True), (rejected, False)) if a]
    return pairs, skipped, where_list


def mix_pairs(
    datasets: list[PreferenceDataset], seed: int, unpaired: bool = False
) -> tuple[list[dict], Counter, list[str]]:
    """Every set's pairs (`unpaired`: answers) scaled by its weight (as `sft` mixes), shuffled together."""
    rng = random.Random(seed)
    out, skipped, where = [], Counter(), []
    for ds in datasets:
        pairs, skip, examples = read_pairs(ds, unpaired)
        skipped.update(skip)
        where += examples
        whole, part = divmod(ds.weight, 1)
        out += pairs * int(whole) + rng.sample(pairs, round(part * len(pairs)))
    rng.shuffle(out)
    return out, skipped, where


def encode_pairs(tokenizer, pairs: list[dict], max_len: int, too_long: str) -> tuple[list[dict], Counter, list[str]]:
    """Each pair as two (ids, labels) rows sharing the prompt; labels only on the final answer."""
    out, skipped, where = [], Counter(), []
    for p in pairs:
        rows = [
            encode(tokenizer, p["prompt"] + [p[k]], last_only=True, tools=p.get("tools"))
            for k in ("chosen", "rejected")
        ]
        longest = max(len(ids) for ids, _ in rows)
        if longest > max_len:
            skipped[f"longer than {max_len} tokens ({too_long})"] += 1
            where.append(f"{p['where']}: {longest} tokens")
            if too_long == "skip":
                continue
            rows = [(ids[:max_len], labels[:max_len]) for ids, labels in rows]
        if any(all(label == IGNORE for label in labels) for _, labels in rows):
            skipped["no answer token left"] += 1
            where.append(f"{p['where']}: no answer token within {max_len} tokens")
            continue
        out.append({"chosen": rows[0], "rejected": rows[1], "language": p["language"], "where": p["where"]})
    return out, skipped, where


def encode_unpaired(
    tokenizer, answers: list[dict], max_len: int, too_long: str, batch_size: int
) -> tuple[list[dict], Counter, list[str]]:
    """KTO's rows: each answer behind its prompt ("chosen") and, for the KL estimate, its prompt
    with the answer of the item before it in its batch ("rejected"; batches are consecutive runs
    of `batch_size` answers, the first taking the last's), as TRL pairs them. The mismatched answers
    of a batch are then the same set as its matched ones."""
    kept, skipped, where = [], Counter(), []
    for a in answers:
        ids, labels = encode(tokenizer, a["prompt"] + [a["answer"]], last_only=True, tools=a.get("tools"))
        if len(ids) > max_len:
            skipped[f"longer than {max_len} tokens ({too_long})"] += 1
            where.append(f"{a['where']}: {len(ids)} tokens")
            if too_long == "skip":
                continue
            ids, labels = ids[:max_len], labels[:max_len]
        if all(label == IGNORE for label in labels):
            skipped["no answer token left"] += 1
            where.append(f"{a['where']}: no answer token within {max_len} tokens")
            continue
        kept.append((a, (ids, labels)))
    out = []
    for start in range(0, len(kept), batch_size):
        chunk = kept[start : start + batch_size]
        for k, (a, row) in enumerate(chunk):
            other = chunk[k - 1][0]["answer"]
            ids, labels = encode(tokenizer, a["prompt"] + [other], last_only=True, tools=a.get("tools"))
            mismatched = (ids[:max_len], labels[:max_len])
            out.append(
                {
                    "chosen": row,
                    "rejected": mismatched,
                    "desirable": a["desirable"],
                    "language": a["language"],
                    "where": a["where"],
                }
            )
    return out, skipped, where
