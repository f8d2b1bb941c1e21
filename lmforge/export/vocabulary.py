"""The tokenizer inside a GGUF file, written as llama.cpp tokenizes: byte-level BPE ("gpt2", with
its merges and llama.cpp's name for the pre-tokenizer) or SentencePiece-style BPE ("llama", with
scores and byte tokens, as Llama 2, Mistral v0.1 and Gemma ship), token types, special tokens and
the chat template."""

import json
from pathlib import Path

from lmforge.errors import ConfigError
from lmforge.tokenizer.kinds import bpe_kind, merge_pairs


def _pre_tokenizer(spec: dict) -> str:
    """llama.cpp's name for the pre-tokenizer regex (it keys tokenization on it)."""
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"
    steps = [p.get("type") for p in pre.get("pretokenizers", [])] if pre.get("type") == "Sequence" else []
    if steps == ["Digits", "ByteLevel"]:
        return "smollm"  # SmolLM's: digits one by one, then GPT-2's regex
    return "default"


def _token_ids(spec: dict) -> tuple[dict[str, int], dict[str, dict]]:
    """Every token's id (the model's vocabulary plus added tokens) and the added tokens by content."""
    vocab = dict(spec["model"]["vocab"])
    added = {t["content"]: t for t in spec.get("added_tokens", [])}
    for content, t in added.items():
        vocab.setdefault(content, t["id"])
    return vocab, added


def _merge_ranks(pairs: list[tuple[str, str]]) -> dict[str, int]:
    """The rank of the first merge that makes each token (BPE applies lower ranks first)."""
    ranks: dict[str, int] = {}
    for rank, pair in enumerate(pairs):
        ranks.setdefault("".join(pair), rank)
    return ranks


def _adds_space_prefix(spec: dict) -> bool:
    """Whether the tokenizer marks the start of the text like a space (SentencePiece's dummy prefix)."""
    steps = [spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}]
    steps += [s for step in list(steps) for s in step.get("normalizers", []) + step.get("pretokenizers", [])]
    return any(
        (s.get("type") == "Prepend" and s.get("prepend") == "▁")
        or (
            s.get("type") == "Metaspace"
            and s.get("prepend_scheme", "always") in ("always", "first")
            and s.get("add_prefix_space", True)
        )
        for s in steps
    )


def add_vocabulary(w, tokenizer_dir: Path, tokenizer) -> str:
    """Write the vocabulary as llama.cpp tokenizes it: "gpt2" (byte-level BPE with merges) or "llama"
    (SentencePiece-style BPE: llama.cpp merges the adjacent pair whose token scores highest, so
    each token scores minus the rank of the merge that makes it, and that order equals BPE's).
    Returns the name llama.cpp keys the tokenization on: "llama", or the byte-level pre-tokenizer's."""
    import gguf

    path = tokenizer_dir / "tokenizer.json"
    if not path.is_file():
        raise ConfigError(f"{tokenizer_dir}: GGUF export needs a tokenizer.json (byte-level or SentencePiece BPE)")
    spec = json.loads(path.read_text())
    model = spec.get("model", {})
    byte_level = model.get("type") == "BPE" and "ByteLevel" in json.dumps(spec.get("decoder"))
    sentencepiece = bpe_kind(spec) == "sentencepiece"
    if not (byte_level or sentencepiece):
        raise ConfigError(
            f"{path}: GGUF export supports byte-level and SentencePiece-style BPE tokenizers only "
            f"(got {model.get('type')}, decoder {(spec.get('decoder') or {}).get('type')})"
        )
    vocab, added = _token_ids(spec)
    size = max(vocab.values()) + 1
    tokens, types = [f"[PAD{i}]" for i in range(size)], [gguf.TokenType.UNUSED] * size
    for content, i in vocab.items():
        tokens[i] = content
        t = added.get(content)
        if t:
            types[i] = gguf.TokenType.CONTROL if t["special"] else gguf.TokenType.USER_DEFINED
        elif sentencepiece and content == model.get("unk_token"):
            types[i] = gguf.TokenType.UNKNOWN
        elif sentencepiece and len(content) == 6 and content.startswith("<0x") and content.endswith(">"):
            types[i] = gguf.TokenType.BYTE
        else:
            types[i] = gguf.TokenType.NORMAL
    if sentencepiece:
        name = "llama"
        ranks = _merge_ranks(merge_pairs(spec["model"]))
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores([-float(ranks[t]) if t in ranks else 0.0 for t in tokens])
        w.add_token_types(types)
        w.add_add_space_prefix(_adds_space_prefix(spec))
    else:
        name = _pre_tokenizer(spec)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(name)
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges([" ".join(pair) for pair in merge_pairs(spec["model"])])
    for special, add in (
        ("bos", w.add_bos_token_id),
        ("eos", w.add_eos_token_id),
        ("pad", w.add_pad_token_id),
        ("unk", w.add_unk_token_id),
    ):
        i = getattr(tokenizer, f"{special}_token_id", None)
        if i is not None:
            add(i)
    # transformers prepends BOS only if the tokenizer's post-processor says so; llama.cpp must match
    probe = tokenizer("a")["input_ids"]
    w.add_add_bos_token(bool(probe) and tokenizer.bos_token_id is not None and probe[0] == tokenizer.bos_token_id)
    w.add_add_eos_token(False)
    if getattr(tokenizer, "chat_template", None):
        w.add_chat_template(tokenizer.chat_template)
    return name
