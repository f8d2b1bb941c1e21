"""One record through the endpoint: send its strings as a JSON object, check what comes back, ask
again naming the problem, and either return the translated record or the reason it was rejected."""

import json
import re

from lmforge.endpoint import EndpointError
from lmforge.text import identify
from lmforge.translate.fields import get, string_paths, with_values
from lmforge.translate.protect import MARKER_RE, ProtectedSpanError, markers_in, protect, restore

LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "sv": "Swedish",
    "da": "Danish",
    "fi": "Finnish",
    "cs": "Czech",
}
MIN_CHECKED_CHARS = 40  # shorter texts: language ID and length ratios are not reliable


class Rejected(Exception):
    """A reply that failed a check: `kind` groups it in the accounting; the message (kind: detail) is
    written to the rejects file and told to the model on retry."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


def system_prompt(source: str, target: str) -> str:
    src, tgt = LANGUAGE_NAMES.get(source, source), LANGUAGE_NAMES.get(target, target)
    return (
        f"You are a careful translator from {src} into {tgt}. You receive one JSON object. Reply with "
        f"one JSON object that has exactly the same keys, each value translated into natural, fluent {tgt}. "
        "Translate meaning, not word by word; keep formatting such as line breaks and list markers. "
        "Markers like ⟦0⟧ stand for text that must not change: copy every marker exactly once, "
        "where it belongs in the translation. Output only the JSON object, no comments."
    )


def parse_reply(text: str, finish_reason: str | None, keys: list[str]) -> dict[str, str]:
    body = text.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.DOTALL)
    if fence:
        body = fence.group(1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        if finish_reason == "length" or (body.startswith("{") and not body.rstrip().endswith("}")):
            raise Rejected("truncated JSON", "the reply was cut off") from None
        raise Rejected("not JSON") from None
    if not isinstance(data, dict) or sorted(data) != sorted(keys):
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise Rejected("changed shape", f"expected keys {sorted(keys)}, got {got}")
    bad = [k for k, v in data.items() if not isinstance(v, str)]
    if bad:
        raise Rejected("changed shape", f"value of key {bad[0]} is not a string")
    return data


def check_translation(sources: dict[str, str], translated: dict[str, str], target: str, cfg) -> None:
    plain_src = " ".join(MARKER_RE.sub(" ", s) for s in sources.values())
    plain_out = " ".join(MARKER_RE.sub(" ", s) for s in translated.values())
    if len(plain_src.strip()) < MIN_CHECKED_CHARS:
        return
    lang, score = identify(plain_out)
    if lang != target or score < cfg.language_threshold:
        raise Rejected("wrong language", f"{lang} ({score:.2f}), expected {target}")
    ratio = len(plain_out) / max(len(plain_src), 1)
    if not cfg.min_length_ratio <= ratio <= cfg.max_length_ratio:
        raise Rejected(
            "implausible length", f"ratio {ratio:.2f} outside [{cfg.min_length_ratio}, {cfg.max_length_ratio}]"
        )


def translate_record(client, record: dict, fmt: str, cfg, task_fields=None) -> dict:
    """The translated record; raises Rejected (or EndpointError) with the reason."""
    paths = string_paths(record, fmt, task_fields)
    if not paths:
        raise Rejected("nothing to translate")
    spans: list[str] = []
    sources = {str(i + 1): protect(get(record, p), spans) for i, p in enumerate(paths)}
    expected = {k: markers_in(v) for k, v in sources.items()}
    messages = [
        {"role": "system", "content": system_prompt(cfg.source_language, cfg.target_language)},
        {"role": "user", "content": json.dumps(sources, ensure_ascii=False, indent=1)},
    ]
    params = {"temperature": cfg.endpoint.temperature, "max_tokens": cfg.endpoint.max_tokens}
    problem: Rejected | None = None
    for _ in range(cfg.retries + 1):
        reply = client.chat(messages, **params)
        try:
            data = parse_reply(reply.text, reply.finish_reason, list(sources))
            restored = {}
            for k, v in data.items():
                try:
                    restored[k] = restore(v, spans, expected[k])
                except ProtectedSpanError as e:
                    raise Rejected("protected span altered", str(e)) from None
            check_translation(sources, data, cfg.target_language, cfg)
            return with_values(record, {p: restored[str(i + 1)] for i, p in enumerate(paths)}, fmt, cfg.target_language)
        except Rejected as e:
            problem = e
            messages = messages + [
                {"role": "assistant", "content": reply.text},
                {
                    "role": "user",
                    "content": f"That reply was rejected ({e}). Reply again "
                    "with only the JSON object, same keys, every marker kept.",
                },
            ]
    raise problem


__all__ = ["EndpointError", "Rejected", "translate_record"]
