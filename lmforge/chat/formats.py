"""Instruction data in the common public formats, converted to one `messages` list per conversation.

    alpaca    {"instruction", "input"?, "output"}                      (Stanford Alpaca, many translations)
    dolly     {"instruction", "context"?, "response", "category"?}     (Databricks Dolly-15k)
    sharegpt  {"conversations": [{"from": "human"|"gpt"|"system", "value"}]}
    messages  {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content"}], "tools"?}   (Tulu v2,
              OpenAI style; assistant turns may hold `tool_calls`, tool turns answer them: chat/tools.py)
    oasst1    one message per line: message_id, parent_id, role "prompter"|"assistant", text, lang, rank
              (OpenAssistant trees; see `oasst_conversations`)

A conversation is a dict {"messages": [...], "language": str | None, "where": "file:line"}.
Records that cannot be used (no assistant turn, unknown shape) are counted with their file:line
by `read_conversations`, never dropped silently.
"""

from collections import Counter, defaultdict
from pathlib import Path

from lmforge.chat.tools import template_messages
from lmforge.data import iter_records
from lmforge.errors import DataError

FORMATS = ("auto", "alpaca", "dolly", "sharegpt", "messages", "oasst1")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "chatgpt": "assistant",
    "bing": "assistant",
}


def detect(record: dict) -> str:
    if "messages" in record:
        return "messages"
    if "conversations" in record:
        return "sharegpt"
    if "message_id" in record and "parent_id" in record:
        return "oasst1"
    if "instruction" in record and "response" in record:
        return "dolly"
    if "instruction" in record and "output" in record:
        return "alpaca"
    raise ValueError(f"unknown record shape (keys: {', '.join(sorted(record)[:6])})")


def _join(instruction: str, extra: str | None) -> str:
    return f"{instruction}\n\n{extra}" if extra else instruction


def to_messages(record: dict, fmt: str) -> list[dict]:
    """One record -> messages, for every format but oasst1 (whose conversations span records)."""
    if fmt == "alpaca":
        return [
            {"role": "user", "content": _join(record["instruction"], record.get("input"))},
            {"role": "assistant", "content": record["output"]},
        ]
    if fmt == "dolly":
        return [
            {"role": "user", "content": _join(record["instruction"], record.get("context"))},
            {"role": "assistant", "content": record["response"]},
        ]
    if fmt == "sharegpt":
        out = []
        for turn in record["conversations"]:
            role = SHAREGPT_ROLES.get(str(turn.get("from", "")).lower())
            if role is None:
                raise ValueError(f"unknown ShareGPT speaker {turn.get('from')!r}")
            out.append({"role": role, "content": turn["value"]})
        return out
    if fmt == "messages":
        keep = ("role", "content", "tool_calls", "tool_call_id", "name")
        return template_messages([{k: m[k] for k in keep if k in m} for m in record["messages"]])
    raise ValueError(f"format {fmt!r} is not per-record")


def oasst_conversations(rows: list[tuple[dict, str]]) -> list[dict]:
    """Walk OpenAssistant message trees into conversations.

    From every root prompt, follow at each assistant turn the best-ranked reply (rank 0, as the
    OASST1 annotators ranked them) and at each prompter turn every follow-up, so each
    conversation ends at a leaf of the best-reply tree. The language tag of the root is kept.
    """
    by_id = {r["message_id"]: (r, where) for r, where in rows}
    children = defaultdict(list)
    for r, _ in rows:
        if r.get("parent_id") is not None:
            children[r["parent_id"]].append(r)
    role = {"prompter": "user", "assistant": "assistant"}
    out = []

    def walk(message: dict, history: list[dict], lang, where: str) -> None:
        history = history + [{"role": role[message["role"]], "content": message["text"]}]
        kids = children.get(message["message_id"], [])
        if message["role"] == "prompter":
            replies = sorted(
                (k for k in kids if k["role"] == "assistant"), key=lambda k: (k.get("rank") is None, k.get("rank") or 0)
            )
            kids = replies[:1]
        if not kids:
            out.append({"messages": history, "language": lang, "where": where})
        for k in kids:
            walk(k, history, lang, where)

    for r, where in rows:
        if r.get("parent_id") is None:
            walk(r, [], r.get("lang"), where)
    missing = [w for r, w in rows if r.get("parent_id") is not None and r["parent_id"] not in by_id]
    if missing:
        raise DataError(f"{missing[0]}: OASST1 message whose parent is not in the file ({len(missing)} such)")
    return out


def read_conversations(path: str | Path, fmt: str = "auto") -> tuple[list[dict], Counter, list[str]]:
    """All usable conversations of a file, the count of skipped records per reason, and where."""
    if fmt not in FORMATS:
        raise DataError(f"{path}: unknown instruction format {fmt!r} (one of {', '.join(FORMATS)})")
    records = list(iter_records([path]))
    skipped, examples, convs, oasst = Counter(), [], [], []
    for record, where in records:
        try:
            kind = fmt if fmt != "auto" else detect(record)
            if kind == "oasst1":
                oasst.append((record, where))
                continue
            messages = to_messages(record, kind)
        except (KeyError, TypeError, ValueError) as e:
            skipped["unreadable record"] += 1
            examples.append(f"{where}: {e}")
            continue
        language = record.get("language") or record.get("lang")
        convs.append({"messages": messages, "tools": record.get("tools"), "language": language, "where": where})
    if oasst:
        convs += oasst_conversations(oasst)
    usable = []
    for c in convs:
        if not any(m["role"] == "assistant" and (m["content"].strip() or m.get("tool_calls")) for m in c["messages"]):
            skipped["no assistant turn"] += 1
            examples.append(f"{c['where']}: no assistant turn")
        else:
            usable.append(c)
    return usable, skipped, examples
