"""Which strings of a record are translated, per format; everything else (keys, roles, ids, answer
indices, structure) is copied as it is."""

import copy
import re

FIELDS = {
    "alpaca": ("instruction", "input", "output"),
    "dolly": ("instruction", "context", "response"),
    "oasst1": ("text",),
}
LIST_FIELDS = {"sharegpt": ("conversations", "value"), "messages": ("messages", "content")}
LANGUAGE_KEY = {"oasst1": "lang"}  # where the record names its language ("language" elsewhere)


def template_fields(prompt: str) -> list[str]:
    """The item fields a task's prompt template reads (`{{question}}`)."""
    return re.findall(r"\{\{\s*(\w+)\s*\}\}", prompt)


def string_paths(record: dict, fmt: str, task_fields: tuple[list[str], str] | None = None) -> list[tuple]:
    """Paths (tuples of keys/indices) of the non-empty strings to translate."""
    if fmt == "task":
        fields, choices = task_fields
        paths = [(f,) for f in fields]
        paths += [(choices, i) for i in range(len(record.get(choices, [])))]
    elif fmt in FIELDS:
        paths = [(f,) for f in FIELDS[fmt] if f in record]
    elif fmt in LIST_FIELDS:
        key, text = LIST_FIELDS[fmt]
        paths = [(key, i, text) for i in range(len(record[key]))]
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return [p for p in paths if isinstance(get(record, p), str) and get(record, p).strip()]


def get(record, path: tuple):
    for k in path:
        record = record[k]
    return record


def with_values(record: dict, values: dict[tuple, str], fmt: str, language: str) -> dict:
    """A deep copy of `record` with the strings at `values`' paths replaced and its language set."""
    out = copy.deepcopy(record)
    for path, value in values.items():
        target = out
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    if fmt != "task":
        out[LANGUAGE_KEY.get(fmt, "language")] = language
    return out
