"""HF folder -> GGUF, written with the `gguf` package the way llama.cpp's converter writes each
family (families.py): llama.cpp's architecture and tensor names, q/k rows permuted to its rotary
layout where it wants that, Gemma's norm offset, RoPE scaling (linear, YaRN, Llama 3's per-frequency
factors), the vocabulary and chat template (vocabulary.py), and every tensor in the type the file
type gives it (quantize.py: f32, f16, bf16, q8_0, q4_0 and the K-quant mixes q4_k_m, q5_k_m, q6_k)."""

from pathlib import Path

import numpy as np

from lmforge.errors import ConfigError
from lmforge.export.families import check_tokens, family_of, write_hyperparameters
from lmforge.export.quantize import TYPES, encode, file_type, tensor_type
from lmforge.export.vocabulary import add_vocabulary


def _permute(x: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotate-half q/k rows -> llama.cpp's interleaved pairs."""
    return x.reshape(heads, 2, x.shape[0] // heads // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


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
    if not c.architectures:
        c.architectures = [type(model).__name__]
    family = family_of(c, str(model_dir))
    check_tokens(tokenizer, family, str(model_dir))
    heads, kv_heads, layers = c.num_attention_heads, c.num_key_value_heads, c.num_hidden_layers

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    w = gguf.GGUFWriter(str(partial), family.arch)
    w.add_name(model_dir.name if model_dir.name not in ("", ".") else "model")
    rope_factors = write_hyperparameters(w, c, family, str(model_dir))
    w.add_file_type(file_type(kind))
    vocabulary = add_vocabulary(w, model_dir, tokenizer)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[family.arch.upper()], layers)
    state = model.state_dict()
    if c.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # llama.cpp reads the embedding as output when output is absent
    tensors = {}
    if rope_factors is not None:
        tensors["rope_freqs.weight"] = rope_factors
    for hf_name, t in state.items():
        x = t.detach().float().numpy()
        if family.permute_qk and ".q_proj." in hf_name:
            x = _permute(x, heads)
        elif family.permute_qk and ".k_proj." in hf_name:
            x = _permute(x, kv_heads)
        if family.norm_offset and hf_name.endswith("norm.weight"):
            x = x + family.norm_offset
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConfigError(f"{model_dir}: tensor {hf_name} has no llama.cpp name")
        tensors[name] = x
    has_output = "output.weight" in tensors
    for name, x in tensors.items():
        qtype = tensor_type(kind, name, x.shape, layers, has_output)
        w.add_tensor(name, encode(x, qtype), raw_dtype=qtype)  # quantized bytes: the writer derives the shape
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    partial.replace(out)
    return {
        "path": str(out),
        "type": kind,
        "bytes": out.stat().st_size,
        "architecture": c.architectures[0],
        "gguf_architecture": family.arch,
        "tokenizer": vocabulary,
        "params": sum(p.numel() for p in model.parameters()),
    }
