"""A lean decode step for Llama-architecture models (Llama, Mistral, SmolLM2, the models lmforge
pretrains): the same arithmetic as transformers' `LlamaForCausalLM.forward` for one new token per
row, without its per-call machinery (module hooks, mask builders, cache objects, output classes),
reading and writing the engine's preallocated KV buffer in place.

Why: at batch 1 a 135M model spends as long in that machinery as in its matmuls on a small CPU.
Its projections read compact weights where that is lossless (`projection_for`, block_weights.py),
else fp32 through oneDNN (`pick_linear`). Greedy tokens stay identical to `generate` (checked in
tests/test_engine.py). Prefill and every other architecture keep using transformers' own forward.
"""

import logging
import os
from functools import cache
from typing import Callable

import torch
import torch.nn.functional as F

from lmforge.engine import block_weights
from lmforge.engine.kv_buffer import KVBuffer

log = logging.getLogger("lmforge.engine")
ARCHITECTURES = {"LlamaForCausalLM", "MistralForCausalLM"}


def supports(model) -> bool:
    """Plain Llama/Mistral modules with the standard layout: no biases, SiLU MLP, no sliding window."""
    if type(model).__name__ not in ARCHITECTURES:
        return False
    cfg = model.config
    window = getattr(cfg, "sliding_window", None)
    if getattr(cfg, "hidden_act", "silu") != "silu" or (window and window < cfg.max_position_embeddings):
        return False
    return all(
        layer.self_attn.q_proj.bias is None and layer.self_attn.o_proj.bias is None and layer.mlp.up_proj.bias is None
        for layer in model.model.layers
    )


def _onednn_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    rows = x.reshape(-1, x.shape[-1])
    out = torch.ops.mkldnn._linear_pointwise(rows, weight, None, "none", [], "")
    return out.view(*x.shape[:-1], weight.shape[0])


@cache
def pick_linear(dtype: torch.dtype) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """oneDNN's inner product for fp32 on CPU, else `F.linear`.

    Why: a decode step is a few matrix-vector products that read every weight once, and on this
    project's AMD test CPU the MKL gemv/gemm behind `F.linear` reads fp32 weights ~1.2-1.6x slower
    than oneDNN's kernel (the one inductor uses for CPU linears), most at 2-8 rows (bench/RESULTS.md).
    The products are the same, summed in another order. oneDNN has no bf16 kernel on CPUs without
    bf16 math, and a build without it has no such op: both keep `F.linear`, as does
    LMFORGE_LINEAR=torch (for CPUs where MKL is the faster one, and for the benchmark's comparison).
    """
    if (
        dtype != torch.float32
        or not torch.backends.mkldnn.is_available()
        or os.environ.get("LMFORGE_LINEAR") == "torch"
    ):
        return F.linear
    try:
        _onednn_linear(torch.ones(1, 1, 8), torch.ones(4, 8))
    except (RuntimeError, AttributeError):
        return F.linear
    return _onednn_linear


Project = Callable[..., list[torch.Tensor]]  # project(x, *weights) -> [x @ w.T for each weight]


def per_weight(linear: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Project:
    return lambda x, *weights: [linear(x, w) for w in weights]


def _groups(model) -> list[tuple[torch.Tensor, ...]]:
    """The weights the step multiplies by the same input, each group in one call."""
    out = [(model.lm_head.weight,)]
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        out += [
            (attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight),
            (attn.o_proj.weight,),
            (mlp.gate_proj.weight, mlp.up_proj.weight),
            (mlp.down_proj.weight,),
        ]
    return out


def projection_for(model) -> Project:
    """The step's projections for this model: the block kernel for the weights that have a lossless
    compact form (4/8-bit GGUF blocks, bf16 values; block_weights.py) while at most MAX_ROWS rows
    decode, else `pick_linear`'s kernel. Q/K/V and gate/up share their input, so when all of a
    group's forms match they are stacked and read in one call (fewer calls, more rows per thread).
    The forms are found once, here (an engine serves a fixed model); the fp32 weights stay for
    prefill and wider batches."""
    if model.device.type != "cpu":
        return per_weight(F.linear)
    fallback = pick_linear(model.dtype)
    if block_weights.kernel() is None:
        return per_weight(fallback)
    forms: dict[tuple[int, ...], block_weights.Blocks] = {}
    groups = _groups(model)
    for group in groups:
        blocks = [block_weights.find_blocks(w) for w in group]
        if all(b is not None and b.bits == blocks[0].bits for b in blocks):
            forms[tuple(map(id, group))] = block_weights.stack(blocks)
        else:
            forms.update({(id(w),): b for w, b in zip(group, blocks) if b is not None})
    if not forms:
        return per_weight(fallback)
    found = sum(len(key) for key in forms)
    log.info(
        "decode step: %d of %d linears read lossless %s-bit blocks (%.0f MB instead of %.0f MB fp32)",
        found,
        sum(map(len, groups)),
        "/".join(sorted({str(b.bits) for b in forms.values()})),
        sum(b.nbytes for b in forms.values()) / 1e6,
        sum(b.shape[0] * b.shape[1] * 4 for b in forms.values()) / 1e6,
    )

    def project(x: torch.Tensor, *weights: torch.Tensor) -> list[torch.Tensor]:
        b = forms.get(tuple(map(id, weights)))
        if b is None and len(weights) > 1:
            return [project(x, w)[0] for w in weights]
        if b is None or x.numel() > block_weights.MAX_ROWS * x.shape[-1]:
            return [fallback(x, w) for w in weights]
        out = block_weights.block_linear(x, b)
        return [out] if len(weights) == 1 else list(out.split([w.shape[0] for w in weights], dim=-1))

    project.blocks = found  # how many linears it reads in compact form (for logs and tests)
    return project


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    dtype = x.dtype
    x = x.float()
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def decode_step(
    model,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    kv: KVBuffer,
    mask: torch.Tensor,
    project: Project | None = None,
) -> torch.Tensor:
    """Logits [rows, vocab] for one token per row. `tokens`, `positions`: [rows, 1]; `mask`:
    [rows, length + 1] (1 = real token), covering the cache and the new column; `project`: from
    `projection_for(model)`, else `pick_linear`'s kernel weight by weight."""
    cfg, inner = model.config, model.model
    rows = tokens.shape[0]
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    eps = cfg.rms_norm_eps
    x = inner.embed_tokens(tokens)
    cos, sin = inner.rotary_emb(x, positions)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    column = kv.next_column()
    if project is None:
        project = per_weight(pick_linear(x.dtype) if x.device.type == "cpu" else F.linear)
    # no mask when no row has padding (every single-stream step): the unmasked kernel is cheaper
    allowed = None if bool(mask.all()) else mask.bool()[:, None, None, :]
    for i, layer in enumerate(inner.layers):
        attn, mlp = layer.self_attn, layer.mlp
        h = _rms_norm(x, layer.input_layernorm.weight, eps)
        q, k, v = project(h, attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight)
        q = q.view(rows, 1, heads, dim).transpose(1, 2)
        k = k.view(rows, 1, kv_heads, dim).transpose(1, 2)
        v = v.view(rows, 1, kv_heads, dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        kv.write(i, column, k, v)
        keys, values = kv.k[i][:, :, : kv.length], kv.v[i][:, :, : kv.length]
        a = F.scaled_dot_product_attention(
            q, keys, values, attn_mask=allowed, scale=attn.scaling, enable_gqa=kv_heads != heads
        )
        x = x + project(a.transpose(1, 2).reshape(rows, 1, heads * dim), attn.o_proj.weight)[0]
        h = _rms_norm(x, layer.post_attention_layernorm.weight, eps)
        gate, up = project(h, mlp.gate_proj.weight, mlp.up_proj.weight)
        x = x + project(F.silu(gate) * up, mlp.down_proj.weight)[0]
    x = _rms_norm(x, inner.norm.weight, eps)
    return project(x[:, -1], model.lm_head.weight)[0]
