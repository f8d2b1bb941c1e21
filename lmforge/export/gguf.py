"""HF folder -> GGUF, written with the `gguf` package the way llama.cpp's converter writes Llama
models: llama.cpp's tensor names, q/k rows permuted to its rotary layout, RoPE (and linear RoPE
scaling), the vocabulary (byte-level BPE with its merges, or SentencePiece-style BPE with scores
and byte tokens, as Llama 2 and Mistral ship) with token types, special tokens and the chat
template. Types: f32, f16, bf16, q8_0, q4_0 (norms stay f32; tensors whose rows do not split into
32-value blocks stay f16, as llama.cpp's converter does)."""

import json
from pathlib import Path

import numpy as np

from lmforge.errors import ConfigError

ARCHITECTURES = {"LlamaForCausalLM", "MistralForCausalLM"}
TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")


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


def _merge_pairs(spec: dict) -> list[tuple[str, str]]:
    """The BPE merges in rank order; tokenizer.json writes each as "a b" or as ["a", "b"]."""
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in spec["model"].get("merges", [])]


def _merge_ranks(pairs: list[tuple[str, str]]) -> dict[str, int]:
    """The rank of the first merge that makes each token (BPE applies lower ranks first)."""
    ranks: dict[str, int] = {}
    for rank, pair in enumerate(pairs):
        ranks.setdefault("".join(pair), rank)
    return ranks


def _is_sentencepiece_bpe(spec: dict) -> bool:
    """Llama-2/Mistral-style: BPE over "▁"-marked text with <0xXX> byte fallback, as converted from
    a SentencePiece model (what LeoLM, Llama 2 and Mistral 7B v0.1 ship in tokenizer.json)."""
    model = spec.get("model", {})
    marks = json.dumps([spec.get("normalizer"), spec.get("pre_tokenizer")], ensure_ascii=False)
    return model.get("type") == "BPE" and bool(model.get("byte_fallback")) and "▁" in marks


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


def _add_vocabulary(w, tokenizer_dir: Path, tokenizer) -> str:
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
    sentencepiece = _is_sentencepiece_bpe(spec)
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
        ranks = _merge_ranks(_merge_pairs(spec))
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
        w.add_token_merges([" ".join(pair) for pair in _merge_pairs(spec)])
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


def _permute(x: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotate-half q/k rows -> llama.cpp's interleaved pairs."""
    return x.reshape(heads, 2, x.shape[0] // heads // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def _encode(x: np.ndarray, kind: str, name: str):
    """(data, raw type) for one tensor under the requested file type."""
    import gguf

    Q = gguf.GGMLQuantizationType
    if x.ndim == 1 or kind == "f32":  # norms and the like: always f32
        return x.astype(np.float32), Q.F32
    if kind == "f16" or (kind in ("q8_0", "q4_0") and x.shape[-1] % 32):
        return x.astype(np.float16), Q.F16
    qtype = {"bf16": Q.BF16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}[kind]
    if kind == "q4_0" and name == "output.weight":
        qtype = Q.Q8_0  # the output matrix is the most sensitive; llama.cpp keeps it at higher precision too
    return gguf.quants.quantize(x.astype(np.float32), qtype), qtype


def export_gguf(model_ref: str | Path, out: str | Path, kind: str = "f16") -> dict:
    """Write `out` (a .gguf file) from any model reference lmforge can load."""
    import gguf
    import torch

    from lmforge.models import load_model_and_tokenizer, resolve_model_dir

    if kind not in TYPES:
        raise ConfigError(f"export gguf: unknown type '{kind}' (one of {', '.join(TYPES)})")
    model_dir = resolve_model_dir(model_ref)
    model, tokenizer = load_model_and_tokenizer(model_dir, dtype=torch.float32)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    c = model.config
    arch = (c.architectures or [type(model).__name__])[0]
    if arch not in ARCHITECTURES:
        raise ConfigError(f"{model_dir}: GGUF export supports {', '.join(sorted(ARCHITECTURES))}, not {arch}")
    if getattr(c, "sliding_window", None) and c.sliding_window < c.max_position_embeddings:
        raise ConfigError(f"{model_dir}: sliding-window attention ({c.sliding_window}) is not exported")
    rope = getattr(c, "rope_parameters", None) or {
        "rope_type": "default",
        "rope_theta": getattr(c, "rope_theta", 10000.0),
    }
    if rope.get("rope_type", "default") not in ("default", "linear"):
        raise ConfigError(f"{model_dir}: RoPE type '{rope['rope_type']}' is not exported (default and linear are)")
    heads, kv_heads = c.num_attention_heads, c.num_key_value_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    w = gguf.GGUFWriter(str(partial), "llama")
    w.add_name(model_dir.name if model_dir.name not in ("", ".") else "model")
    w.add_context_length(c.max_position_embeddings)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_embedding_length(c.hidden_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(float(rope.get("rope_theta", 10000.0)))
    if rope.get("rope_type") == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rope["factor"]))
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_vocab_size(c.vocab_size)
    w.add_file_type(
        {
            "f32": gguf.LlamaFileType.ALL_F32,
            "f16": gguf.LlamaFileType.MOSTLY_F16,
            "bf16": gguf.LlamaFileType.MOSTLY_BF16,
            "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
            "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
        }[kind]
    )
    vocabulary = _add_vocabulary(w, model_dir, tokenizer)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, c.num_hidden_layers)
    state = model.state_dict()
    if c.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # llama.cpp reads the embedding as output when output is absent
    for hf_name, t in state.items():
        x = t.detach().float().numpy()
        if hf_name.endswith("q_proj.weight"):
            x = _permute(x, heads)
        elif hf_name.endswith("k_proj.weight"):
            x = _permute(x, kv_heads)
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConfigError(f"{model_dir}: tensor {hf_name} has no llama.cpp name")
        data, qtype = _encode(x, kind, name)
        w.add_tensor(name, data, raw_dtype=qtype)  # quantized bytes: the writer derives the element shape
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    partial.replace(out)
    return {
        "path": str(out),
        "type": kind,
        "bytes": out.stat().st_size,
        "architecture": arch,
        "tokenizer": vocabulary,
        "params": sum(p.numel() for p in model.parameters()),
    }
