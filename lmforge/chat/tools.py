"""Tool calls: how a chat template writes them, how to read them back out of a reply, and how to force one.

Each model family has its own convention, which its chat template shows (`tools=` of
`apply_chat_template` renders the function schemas; an assistant turn with `tool_calls` renders
the calls the way the model was trained to write them):

    hermes   <tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>    Qwen 2/2.5/3, Hermes, SmolLM3,
                                                                          lmforge's own ChatML
    llama3   {"name": ..., "parameters": {...}}   the whole reply, maybe after <|python_tag|>
    mistral  [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]

The server and training both go through here: conversations in OpenAI's wire shape become the
dicts the templates read (`arguments` as an object, not OpenAI's JSON string), and a reply
becomes its text and its calls. A block that does not parse stays text: nothing the model wrote
is dropped. Forcing a call (`tool_choice: required` or a named function) needs no grammar of the
convention: the call's opening marker is appended to the prompt and the rest is JSON, which the
engine's JSON-schema constraint (engine/constraints.py) or llama.cpp's grammar enforces.
"""

import json
import re
import uuid
from dataclasses import dataclass, field

from lmforge.errors import ConfigError

HERMES_OPEN, HERMES_CLOSE = "<tool_call>", "</tool_call>"
PYTHON_TAG, MISTRAL_OPEN = "<|python_tag|>", "[TOOL_CALLS]"
ARGUMENTS_KEY = {"hermes": "arguments", "llama3": "parameters", "mistral": "arguments"}
_DECODER = json.JSONDecoder()


def tool_format(template: str) -> str:
    """The convention a chat template writes calls in; a ConfigError when it takes no tools or
    writes them some way this module does not read."""
    if "tools" not in template:
        raise ConfigError("the model's chat template takes no tools")
    if MISTRAL_OPEN in template:
        return "mistral"
    if HERMES_OPEN in template:
        return "hermes"
    if '"parameters"' in template or "<|start_header_id|>" in template:
        return "llama3"
    raise ConfigError("the model's chat template writes tool calls in a way lmforge does not read")


def template_messages(messages: list[dict]) -> list[dict]:
    """OpenAI-shaped messages as chat templates read them: a call's `arguments` decoded from its
    JSON string into an object (templates write it with `tojson`), keys a template tests for
    (`'tool_calls' in message`) present only when given. A ValueError names the bad call."""
    out = []
    for i, m in enumerate(messages):
        m = {k: v for k, v in m.items() if v is not None}
        m.setdefault("content", "")
        if m.get("tool_calls"):
            m["tool_calls"] = [
                _template_call(c, f"messages[{i}].tool_calls[{j}]") for j, c in enumerate(m["tool_calls"])
            ]
        else:
            m.pop("tool_calls", None)
        out.append(m)
    return out


def _template_call(call: dict, where: str) -> dict:
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            raise ValueError(f"{where}.function.arguments: not a JSON object") from None
    if not isinstance(args, dict) or not isinstance(fn.get("name"), str):
        raise ValueError(f"{where}.function: needs a name and an arguments object")
    return {
        "id": call.get("id") or new_call_id(),
        "type": "function",
        "function": {"name": fn["name"], "arguments": args},
    }


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


# ---- forcing a call ------------------------------------------------------------------------------


def forced_opening(fmt: str) -> str:
    """What the prompt is extended with when a call is required: the rest is the call's JSON."""
    return {"hermes": HERMES_OPEN + "\n", "llama3": "", "mistral": MISTRAL_OPEN}[fmt]


def call_schema(tools: list[dict], fmt: str, name: str | None = None) -> dict:
    """JSON schema of what follows `forced_opening`: one call of any tool given (or of `name`),
    its arguments matching that tool's parameters (for Mistral, a list of that one call). One,
    because every convention ends a forced reply there; a model that wants several calls is
    asked again with the first one's result."""
    key = ARGUMENTS_KEY[fmt]
    chosen = [t["function"] for t in tools if name is None or t["function"]["name"] == name]
    one = [
        {
            "type": "object",
            "properties": {"name": {"const": f["name"]}, key: f.get("parameters") or {"type": "object"}},
            "required": ["name", key],
            "additionalProperties": False,
        }
        for f in chosen
    ]
    call = one[0] if len(one) == 1 else {"anyOf": one}
    return {"type": "array", "items": call, "minItems": 1, "maxItems": 1} if fmt == "mistral" else call


# ---- reading calls back --------------------------------------------------------------------------


@dataclass
class Call:
    name: str
    arguments: dict
    id: str = field(default_factory=new_call_id)

    def openai(self, index: int | None = None) -> dict:
        """OpenAI's shape: arguments as a JSON string; `index` for a streamed delta."""
        out = {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)},
        }
        return out if index is None else {"index": index, **out}


def _as_call(obj, fmt: str) -> Call | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get(ARGUMENTS_KEY[fmt], obj.get("arguments", obj.get("parameters")))
    if isinstance(args, str):  # some models write the arguments as a JSON string
        try:
            args = json.loads(args)
        except ValueError:
            return None
    return Call(obj["name"], args) if isinstance(args, dict) else None


def _json_values(text: str) -> list | None:
    """Every JSON value in `text` one after another (separated by blanks or `;`), or None."""
    values, i = [], 0
    while True:
        while i < len(text) and text[i] in " \t\r\n;":
            i += 1
        if i == len(text):
            return values
        try:
            value, i = _DECODER.raw_decode(text, i)
        except ValueError:
            return None
        values.append(value)


def parse_calls(text: str, fmt: str) -> tuple[str, list[Call]]:
    """A reply's text without its calls, and the calls; a reply that holds no well-formed call
    comes back whole, as text."""
    if fmt == "hermes":
        return _parse_hermes(text)
    body = text.strip()
    for marker in (PYTHON_TAG, MISTRAL_OPEN):
        body = body.removeprefix(marker).lstrip()
    values = _json_values(body) if body[:1] in ("{", "[") else None
    if not values:
        return text, []
    objects = [v for value in values for v in (value if isinstance(value, list) else [value])]
    calls = [_as_call(o, fmt) for o in objects]
    return ("", calls) if calls and all(calls) else (text, [])


_HERMES_BLOCK = re.compile(re.escape(HERMES_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(HERMES_CLOSE) + r"|$)", re.S)


def _parse_hermes(text: str) -> tuple[str, list[Call]]:
    calls, kept, at = [], [], 0
    for m in _HERMES_BLOCK.finditer(text):
        values = _json_values(m.group(1))
        found = [_as_call(v, "hermes") for v in values] if values else []
        if found and all(found):
            kept.append(text[at : m.start()])
            calls += found
            at = m.end()
    if not calls:
        return text, []
    kept.append(text[at:])
    return "".join(kept).strip(), calls


class CallStream:
    """A streamed reply split into text that can go out now and calls held until the end.

    Text streams until something that may open a call appears (Hermes: `<tool_call>`, or the
    start of it at the end of what came so far; JSON conventions: a reply whose first non-blank
    character opens a JSON value); from there on it is held, and `end` parses it: calls, and any
    text that turned out not to be one."""

    def __init__(self, fmt: str, opening: str = ""):
        self.fmt, self.held, self.holding = fmt, opening, bool(opening)
        self.decided = bool(opening) or fmt == "hermes"

    def feed(self, piece: str) -> str:
        self.held += piece
        if self.holding:
            return ""
        if self.fmt == "hermes":
            at = self.held.find(HERMES_OPEN)
            if at >= 0:
                self.holding = True
            else:  # where a partial opening may start: nothing before it can be part of one
                at = next((k for k in range(len(self.held)) if HERMES_OPEN.startswith(self.held[k:])), len(self.held))
            out, self.held = self.held[:at], self.held[at:]
            return out
        if not self.decided:
            start = self.held.lstrip()
            if not start:
                return ""
            self.decided = True
            self.holding = start[0] in "{["  # a call's JSON (Mistral's marker is "[TOOL_CALLS]")
            if self.holding:
                return ""
        out, self.held = self.held, ""
        return out

    def end(self) -> tuple[str, list[Call]]:
        """The text still held (not a call after all, or around the calls) and the calls."""
        text, self.held = self.held, ""
        return parse_calls(text, self.fmt) if text else ("", [])
