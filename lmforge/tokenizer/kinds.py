"""Which kind of BPE a `tokenizer.json` holds (the two that lmforge extends and exports), and its
merges.

- "byte-level": GPT-2's scheme (lmforge's own, SmolLM, Llama 3, Qwen): text mapped to 256
  printable stand-ins for bytes, then BPE; nothing is ever unknown.
- "sentencepiece": BPE over "▁"-marked text with `<0xXX>` byte fallback for characters the
  vocabulary lacks, as transformers converts a SentencePiece model (Llama 2, LeoLM, Mistral v0.1,
  Gemma); the "▁" comes from a Metaspace pre-tokenizer or from a Prepend/Replace normalizer.
"""

import json


def bpe_kind(spec: dict) -> str | None:
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        return None
    marks = json.dumps([spec.get("normalizer"), spec.get("pre_tokenizer")], ensure_ascii=False)
    if model.get("byte_fallback") and "▁" in marks:
        return "sentencepiece"
    pre = spec.get("pre_tokenizer") or {}
    steps = {pre.get("type"), *(p.get("type") for p in pre.get("pretokenizers", []))}
    return "byte-level" if "ByteLevel" in steps else None


def merge_pairs(model: dict) -> list[tuple[str, str]]:
    """A BPE model's merges in rank order; tokenizer.json writes each as "a b" or as ["a", "b"]."""
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model.get("merges", [])]
