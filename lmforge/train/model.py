"""Models are plain transformers Llama/Mistral models, so checkpoints are ordinary HF folders.

lmforge trains the exact module that `AutoModelForCausalLM.from_pretrained` later rebuilds;
there is no private model class that would need converting.
"""

import math

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, PretrainedConfig

from lmforge.recipe import ModelConfig


def hf_config(m: ModelConfig, vocab_size: int, seq_len: int, eos_id: int, pad_id: int | None) -> PretrainedConfig:
    """Translate the recipe's model section into a transformers config."""
    inter = m.intermediate_size or 32 * math.ceil(8 * m.hidden_size / 3 / 32)
    common = dict(
        vocab_size=vocab_size,
        hidden_size=m.hidden_size,
        intermediate_size=inter,
        num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads,
        num_key_value_heads=m.num_kv_heads or m.num_heads,
        max_position_embeddings=m.max_position_embeddings or seq_len,
        rope_theta=m.rope_theta,
        tie_word_embeddings=m.tie_word_embeddings,
        initializer_range=m.init_std,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        attention_dropout=0.0,
    )
    if m.family == "mistral":
        return MistralConfig(sliding_window=m.sliding_window, **common)
    return LlamaConfig(**common)


def build_model(config: PretrainedConfig, seed: int) -> torch.nn.Module:
    """Freshly initialised fp32 model with SDPA attention; the seed fixes the initial weights."""
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.float32)


def count_params(model: torch.nn.Module, exclude_embeddings: bool = False) -> int:
    """Unique parameters (tied weights counted once), optionally without the embedding matrix."""
    seen, total = set(), 0
    for name, p in model.named_parameters():
        if id(p) in seen or (exclude_embeddings and "embed_tokens" in name):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def flops_per_token(config: PretrainedConfig, n_params_no_embed: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N for the weights plus attention scores (PaLM appendix B)."""
    return (
        6 * n_params_no_embed
        + 6 * config.vocab_size * config.hidden_size
        + 12 * config.num_hidden_layers * config.hidden_size * seq_len
    )
