"""What differs between model families in a GGUF file: llama.cpp's architecture name, whether q/k
rows are permuted to its interleaved rotary layout, the hyperparameter keys each family reads, and
the checks that refuse what llama.cpp would compute differently from transformers.

llama.cpp hard-codes some choices per architecture, so an export that wrote the weights faithfully
could still decode differently: Gemma 2 slides every other layer and Gemma 3 all but every sixth,
SmolLM3 drops RoPE in every fourth layer, and llama.cpp has no dynamic-NTK RoPE. Those are checked
here and refused in one line rather than written into a file that disagrees with its source.
"""

import math
from dataclasses import dataclass

import numpy as np

from lmforge.errors import ConfigError


@dataclass(frozen=True)
class Family:
    arch: str  # llama.cpp's architecture name (gguf.MODEL_ARCH member, lower case)
    permute_qk: bool  # llama.cpp's "llama"-style archs rotate adjacent pairs; the others rotate halves as HF
    norm_offset: float = 0.0  # Gemma stores RMSNorm weights as w - 1 (it multiplies by 1 + w)
    swa_every: int = 0  # Gemma: every n-th layer is global, the others slide (llama.cpp's fixed pattern)
    tokens: tuple[str, ...] = ()  # tokens llama.cpp looks up by text when it loads this architecture


FAMILIES = {
    "LlamaForCausalLM": Family("llama", True),
    "MistralForCausalLM": Family("llama", True),
    "SmolLM3ForCausalLM": Family("smollm3", True),
    "Qwen2ForCausalLM": Family("qwen2", False),
    "Qwen3ForCausalLM": Family("qwen3", False),
    "Phi3ForCausalLM": Family("phi3", False, tokens=("<unk>", "<s>", "</s>", "<|endoftext|>")),
    "Gemma2ForCausalLM": Family("gemma2", False, norm_offset=1.0, swa_every=2),
    "Gemma3ForCausalLM": Family("gemma3", False, norm_offset=1.0, swa_every=6),
}


def family_of(config, where: str) -> Family:
    arch = (config.architectures or [""])[0]
    if arch not in FAMILIES:
        raise ConfigError(f"{where}: GGUF export supports {', '.join(sorted(FAMILIES))}, not {arch or 'this model'}")
    return FAMILIES[arch]


def _rope(config, layer_type: str = "full_attention") -> dict:
    params = getattr(config, "rope_parameters", None) or {
        "rope_type": "default",
        "rope_theta": getattr(config, "rope_theta", 10000.0),
    }
    if layer_type in params:  # Gemma 3: one set per layer type
        params = params[layer_type]
    return params


def llama3_rope_factors(config, head_dim: int) -> np.ndarray:
    """Per-frequency divisors of Llama 3.x's RoPE scaling (llama.cpp's `rope_freqs` tensor): high
    frequencies keep their angle, low ones are divided by `factor`, the band between is blended."""
    rope = _rope(config)
    factor, low, high = rope["factor"], rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old = rope.get("original_max_position_embeddings", 8192)
    freqs = 1.0 / rope["rope_theta"] ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    out = []
    for wavelen in 2 * math.pi / freqs:
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def _check(config, family: Family, where: str) -> None:
    c = config
    window = getattr(c, "sliding_window", None)
    if family.arch in ("llama", "qwen2", "qwen3", "smollm3") and window and window < c.max_position_embeddings:
        if family.arch != "qwen2" or getattr(c, "use_sliding_window", False):
            raise ConfigError(f"{where}: llama.cpp's {family.arch} has no sliding-window attention ({window})")
    if family.swa_every:
        want = [
            "sliding_attention" if (i + 1) % family.swa_every else "full_attention" for i in range(c.num_hidden_layers)
        ]
        if list(getattr(c, "layer_types", want) or want) != want:
            raise ConfigError(
                f"{where}: llama.cpp's {family.arch} slides all layers but every {family.swa_every}th; "
                f"this model's layer_types differ"
            )
    if family.arch == "gemma2" and not (c.attn_logit_softcapping and c.final_logit_softcapping):
        raise ConfigError(f"{where}: llama.cpp's gemma2 always soft-caps logits; this model has no caps set")
    if family.arch == "gemma3" and (c.attn_logit_softcapping or c.final_logit_softcapping):
        raise ConfigError(f"{where}: llama.cpp's gemma3 has no logit soft-capping")
    if family.arch == "smollm3":
        every = getattr(c, "no_rope_layer_interval", 4)
        want = [int((i + 1) % 4 != 0) for i in range(c.num_hidden_layers)]
        if every != 4 or list(getattr(c, "no_rope_layers", want)) != want:
            raise ConfigError(f"{where}: llama.cpp's smollm3 drops RoPE in every 4th layer; this model differs")
    if _rope(c).get("rope_type") == "llama3" and family.arch != "llama":
        raise ConfigError(f"{where}: llama.cpp reads Llama 3's RoPE scaling for the llama architecture only")
    for layer_type in ("full_attention", "sliding_attention"):
        kind = _rope(c, layer_type).get("rope_type", "default")
        if kind not in ("default", "linear", "yarn", "llama3"):
            raise ConfigError(
                f"{where}: RoPE type '{kind}' has no llama.cpp equivalent (default, linear, yarn and llama3 do)"
            )


def check_tokens(tokenizer, family: Family, where: str) -> None:
    vocab = tokenizer.get_vocab()
    missing = [t for t in family.tokens if t not in vocab]
    if missing:
        raise ConfigError(
            f"{where}: llama.cpp's {family.arch} loads only vocabularies with the tokens {', '.join(family.tokens)} "
            f"(this one lacks {', '.join(missing)})"
        )


def write_hyperparameters(w, config, family: Family, where: str) -> np.ndarray | None:
    """The architecture's keys; returns Llama 3's `rope_freqs` tensor when the model has one."""
    import gguf

    _check(config, family, where)
    c = config
    heads, kv_heads = c.num_attention_heads, c.num_key_value_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    w.add_context_length(c.max_position_embeddings)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_embedding_length(c.hidden_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(int(head_dim * getattr(c, "partial_rotary_factor", 1.0)))
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_vocab_size(c.vocab_size)
    rope = _rope(c)
    w.add_rope_freq_base(float(rope.get("rope_theta", 10000.0)))
    factors = None
    kind = rope.get("rope_type", "default")
    if kind == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rope["factor"]))
    elif kind == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(float(rope["factor"]))
        original = rope.get("original_max_position_embeddings") or c.max_position_embeddings / rope["factor"]
        w.add_rope_scaling_orig_ctx_len(int(original))
    elif kind == "llama3":
        factors = llama3_rope_factors(c, head_dim)
    if family.swa_every:
        w.add_sliding_window(c.sliding_window)
        w.add_sliding_window_pattern([t == "sliding_attention" for t in c.layer_types])
        w.add_rope_freq_base_swa(float(_rope(c, "sliding_attention").get("rope_theta", 10000.0)))
        w.add_attention_scale(float(c.query_pre_attn_scalar) ** -0.5)
    if family.arch == "gemma2":
        w.add_attn_logit_softcapping(float(c.attn_logit_softcapping))
        w.add_final_logit_softcapping(float(c.final_logit_softcapping))
    if family.arch == "phi3":
        w.add_sliding_window(int(getattr(c, "sliding_window", None) or 0))
        w.add_rope_scaling_orig_ctx_len(int(getattr(c, "original_max_position_embeddings", c.max_position_embeddings)))
    return factors
