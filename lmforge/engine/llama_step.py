"""A lean decode step for every family whose layer is a variation of Llama's (Llama 1/2/3,
Mistral, SmolLM2/3, Qwen2/3, Gemma 2/3, Phi-3, and the models lmforge pretrains): the same
arithmetic as each family's transformers forward for one new token per row, without its per-call
machinery (module hooks, mask builders, cache objects, output classes), reading and writing the
engine's preallocated KV buffer in place.

The variations are options of one step, read off the modules (`_Layout`): biases on projections
(Qwen2), q/k norms (Qwen3, Gemma 3), norms around attention and MLP (Gemma's four per layer; the
norm modules' own `forward` carries Gemma's 1 + w), fused QKV and gate/up (Phi-3), the MLP's
activation, attention-logit and final-logit soft-capping (Gemma 2), sliding windows per layer
(Mistral, Gemma's interleaving), a RoPE per layer type (Gemma 3) or none (SmolLM3's NoPE layers),
and partial rotary dimensions.

The same step runs a prompt's new tokens (several per row, causal among themselves): the
engine prefills with it, short prompts together, on top of the K/V its prefix cache kept.

Why: at batch 1 a 135M model spends as long in that machinery as in its matmuls on a small CPU,
and a prompt of a few dozen new tokens still pays it in full. Its projections read compact
weights where that is lossless (`projection_for`, block_weights.py), else fp32 through oneDNN
(`pick_linear`). Greedy tokens stay identical to `generate` (checked in tests/test_engine.py,
tests/test_families.py). Scoring a prompt (`echo`: every position's logits) and every other
architecture keep using transformers' own forward.
"""

import inspect
import logging
import os
import weakref
from functools import cache
from typing import Callable

import torch
import torch.nn.functional as F

from lmforge.engine import block_weights
from lmforge.engine.kv_buffer import KVBuffer

log = logging.getLogger("lmforge.engine")
ARCHITECTURES = {
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "SmolLM3ForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Gemma2ForCausalLM",
    "Gemma3ForCausalLM",
    "Phi3ForCausalLM",
}


def supports(model) -> bool:
    return type(model).__name__ in ARCHITECTURES


def _attention_weights(layer) -> tuple[torch.Tensor, ...]:
    a = layer.self_attn
    return (a.qkv_proj.weight,) if hasattr(a, "qkv_proj") else (a.q_proj.weight, a.k_proj.weight, a.v_proj.weight)


def _mlp_weights(layer) -> tuple[torch.Tensor, ...]:
    m = layer.mlp
    return (m.gate_up_proj.weight,) if hasattr(m, "gate_up_proj") else (m.gate_proj.weight, m.up_proj.weight)


class _Layout:
    """What this model's layers do beyond Llama's, read once per model."""

    def __init__(self, model):
        cfg, layers = model.config, model.model.layers
        types = getattr(cfg, "layer_types", None)
        window = getattr(cfg, "sliding_window", None)
        self.windows = [
            (window if types[i] == "sliding_attention" else None) if types else window for i in range(len(layers))
        ]
        self.rope_types = (
            types if "layer_type" in inspect.signature(model.model.rotary_emb.forward).parameters else None
        )
        self.ropes = [getattr(layer.self_attn, "use_rope", True) for layer in layers]
        self.softcap = getattr(cfg, "attn_logit_softcapping", None)
        self.final_softcap = getattr(cfg, "final_logit_softcapping", None)
        self.sandwich = hasattr(layers[0], "pre_feedforward_layernorm")  # Gemma: norms after attention and MLP
        self.qk_norm = hasattr(layers[0].self_attn, "q_norm")
        mlp = layers[0].mlp
        self.act = getattr(mlp, "act_fn", None) or mlp.activation_fn


_LAYOUTS: "weakref.WeakKeyDictionary[torch.nn.Module, _Layout]" = weakref.WeakKeyDictionary()


def _layout(model) -> _Layout:
    if model not in _LAYOUTS:
        _LAYOUTS[model] = _Layout(model)
    return _LAYOUTS[model]


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
        out += [
            _attention_weights(layer),
            (layer.self_attn.o_proj.weight,),
            _mlp_weights(layer),
            (layer.mlp.down_proj.weight,),
        ]
    return out


_FOUND: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (weights, versions, projection)


def projection_for(model) -> Project:
    """The step's projections for this model: the block kernel for the weights that have a lossless
    compact form (4/8-bit GGUF blocks, bf16 values; block_weights.py) while at most MAX_ROWS rows
    decode, else `pick_linear`'s kernel. Q/K/V and gate/up share their input, so when all of a
    group's forms match they are stacked and read in one call (fewer calls, more rows per thread).
    The fp32 weights stay for prefill and wider batches.

    Finding the forms reads every weight (~1.5 s for SmolLM2-135M on 2 cores), and evaluation
    starts an engine per task: the result is kept per model while its weights are the same tensors
    and none has changed since (a tensor's version counter moves with every in-place write: an
    optimizer step, a load). The forms are keyed by the weights' ids, which a new tensor may reuse,
    so the kept weights are compared by identity, not by id."""
    weights = tuple(model.parameters())
    versions = tuple(p._version for p in weights)
    kept = _FOUND.get(model)
    if kept is not None and kept[1] == versions and all(a is b for a, b in zip(kept[0], weights, strict=True)):
        return kept[2]
    project = _find_projection(model)
    _FOUND[model] = (weights, versions, project)
    return project


def _find_projection(model) -> Project:
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


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    rot = cos.shape[-1]  # Phi-3 and others rotate only the first `rot` dimensions of a head
    if rot == x.shape[-1]:
        return x * cos + _rotate_half(x) * sin
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    return torch.cat([x_rot * cos + _rotate_half(x_rot) * sin, x_pass], dim=-1)


def _with_bias(outs: list[torch.Tensor], modules: list) -> list[torch.Tensor]:
    return [o if m.bias is None else o + m.bias for o, m in zip(outs, modules)]


def _attend(q, keys, values, allowed, scaling: float, softcap: float | None) -> torch.Tensor:
    """SDPA, or Gemma 2's eager arithmetic where logits are soft-capped (no fused kernel does that)."""
    gqa = keys.shape[1] != q.shape[1]
    if softcap is None:
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed, scale=scaling, enable_gqa=gqa)
    if gqa:
        keys = keys.repeat_interleave(q.shape[1] // keys.shape[1], dim=1)
        values = values.repeat_interleave(q.shape[1] // values.shape[1], dim=1)
    scores = torch.tanh(q @ keys.transpose(2, 3) * scaling / softcap) * softcap
    if allowed is not None:
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype) @ values


def _columns(mask: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each new token's column [n, 1] and every column [1, length + n]."""
    width = mask.shape[1]
    return torch.arange(width - n, width, device=mask.device)[:, None], torch.arange(width, device=mask.device)[None]


def _allowed(mask: torch.Tensor, n: int) -> torch.Tensor | None:
    """[rows, 1, n, length + n]: what each new token attends to, its row's real columns up to
    itself; None when one token per row sees every column (every single-stream step: the
    unmasked kernel is cheaper). A padding position sees itself, so no row of the attention is
    empty (which would make NaNs that masked weights of 0 still spread through its K, V)."""
    if n == 1 and bool(mask.all()):
        return None
    query, key = _columns(mask, n)
    return ((mask.bool()[:, None, :] & (key <= query)) | (key == query))[:, None]


def decode_step(
    model,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    kv: KVBuffer,
    mask: torch.Tensor,
    project: Project | None = None,
) -> torch.Tensor:
    """Logits [rows, vocab] for the token after each row's last. `tokens`, `positions`: [rows, n],
    n new tokens per row (one when decoding; a short prompt's tail when prefilling, left-padded
    where a row has fewer: their mask is 0); `mask`: [rows, length + n] (1 = real token),
    covering the cache and the new columns; `project`: from `projection_for(model)`, else
    `pick_linear`'s kernel weight by weight."""
    cfg, inner, lay = model.config, model.model, _layout(model)
    rows, n = tokens.shape
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    x = inner.embed_tokens(tokens)  # Gemma's module scales by sqrt(hidden) itself
    if lay.rope_types:  # Gemma 3: one rotary embedding per layer type
        ropes = {t: inner.rotary_emb(x, positions, t) for t in set(lay.rope_types)}
        angles = [ropes[t] for t in lay.rope_types]
    else:
        angles = [inner.rotary_emb(x, positions)] * len(inner.layers)
    column = kv.next_column(n)
    if project is None:
        project = per_weight(pick_linear(x.dtype) if x.device.type == "cpu" else F.linear)
    allowed = _allowed(mask, n)
    windowed = {}
    if any(lay.windows):  # a key is seen while the query is fewer than `window` positions past it
        behind = positions[:, :, None] - (mask.cumsum(-1) - 1)[:, None, :]  # [rows, n, length + n]
        query, key = _columns(mask, n)
        own = key == query
        for w in set(filter(None, lay.windows)):
            near = (behind < w)[:, None]
            windowed[w] = near if allowed is None else (near & allowed) | own
    for i, layer in enumerate(inner.layers):
        attn, mlp = layer.self_attn, layer.mlp
        h = layer.input_layernorm.forward(x)
        if hasattr(attn, "qkv_proj"):
            (qkv,) = _with_bias(project(h, attn.qkv_proj.weight), [attn.qkv_proj])
            q, k, v = qkv.split([heads * dim, kv_heads * dim, kv_heads * dim], dim=-1)
        else:
            parts = [attn.q_proj, attn.k_proj, attn.v_proj]
            q, k, v = _with_bias(project(h, *(m.weight for m in parts)), parts)
        q = q.view(rows, n, heads, dim).transpose(1, 2)
        k = k.view(rows, n, kv_heads, dim).transpose(1, 2)
        v = v.view(rows, n, kv_heads, dim).transpose(1, 2)
        if lay.qk_norm:
            q, k = attn.q_norm.forward(q), attn.k_norm.forward(k)
        if lay.ropes[i]:
            cos, sin = (t.unsqueeze(1) for t in angles[i])
            q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        kv.write(i, column, k, v)
        keys, values = kv.layer(i)
        window = lay.windows[i]
        a = _attend(q, keys, values, windowed[window] if window else allowed, attn.scaling, lay.softcap)
        (o,) = _with_bias(project(a.transpose(1, 2).reshape(rows, n, heads * dim), attn.o_proj.weight), [attn.o_proj])
        if lay.sandwich:
            x = x + layer.post_attention_layernorm.forward(o)
            h = layer.pre_feedforward_layernorm.forward(x)
        else:
            x = x + o
            h = layer.post_attention_layernorm.forward(x)
        if hasattr(mlp, "gate_up_proj"):
            gate, up = project(h, mlp.gate_up_proj.weight)[0].chunk(2, dim=-1)
        else:
            gate, up = _with_bias(project(h, mlp.gate_proj.weight, mlp.up_proj.weight), [mlp.gate_proj, mlp.up_proj])
        (m,) = _with_bias(project(lay.act(gate) * up, mlp.down_proj.weight), [mlp.down_proj])
        x = x + (layer.post_feedforward_layernorm.forward(m) if lay.sandwich else m)
    x = inner.norm.forward(x)
    logits = project(x[:, -1], model.lm_head.weight)[0]
    if lay.final_softcap:
        logits = torch.tanh(logits / lay.final_softcap) * lay.final_softcap
    return logits
