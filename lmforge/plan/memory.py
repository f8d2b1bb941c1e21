"""Peak training memory of a Llama-style decoder, before anything is allocated (`lmforge plan --memory`).

The peak of a training step is, to first order, the sum of five parts:

- weights: 4 bytes per parameter (lmforge keeps fp32 master weights; bf16 autocast adds a bf16
  copy of each matmul weight while the forward pass runs), a 4-bit NF4 base for QLoRA (~0.52
  bytes per parameter with double quantisation, its embeddings and norms kept in 16 bits);
- gradients: 4 bytes per trainable parameter;
- optimizer state: AdamW's two fp32 moments (8 bytes per trainable parameter; 8-bit AdamW 2);
- activations: what autograd saves per token and layer. Counted from the layer's code: the two
  RMSNorms' inputs and outputs, q/k/v after RoPE (and k/v repeated for grouped-query attention),
  the attention output and its reshaped copy, and the MLP's gate, up, SiLU(gate) and product. SDPA
  keeps no seq x seq matrix (a flash-style kernel), so activations grow linearly with the
  sequence. With activation checkpointing only each layer's input stays, plus one layer's full set
  while it is recomputed;
- logits: the vocabulary-wide logits, their fp32 log-softmax (or the fused loss's stored
  gradient) and the gradient flowing back, per token.

Not all five coexist: the backward pass frees activations as it fills in gradients. The peak is
the larger of two moments: the start of the backward pass (weights, optimizer state, all
activations and logits, the output layer's gradient) and the optimizer step (weights, gradients,
optimizer state, and AdamW's temporaries, about one fp32 copy of the trainable parameters).

FSDP over W processes divides weights, gradients and optimizer state by W and adds one layer's
gathered weights. Checked against measured peaks (bench/memory.py): CPU resident-set growth, and
`torch.cuda.max_memory_allocated` on a GPU.
"""

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from lmforge.errors import ConfigError

GIB = 2**30

# usable bytes: the card's memory less ~1 GiB for the CUDA context, kernels and fragmentation
DEVICES = {
    "H200-141GB": 141e9,
    "H100-80GB": 80e9,
    "A100-80GB": 80e9,
    "A100-40GB": 40e9,
    "L40S-48GB": 48e9,
    "RTX-4090-24GB": 24e9,
    "L4-24GB": 24e9,
    "RTX-3090-24GB": 24e9,
    "T4-16GB": 16e9,
}
RESERVED = 1 * GIB  # CUDA context and allocator slack; on a CPU, the Python and torch runtime


@dataclass(frozen=True)
class Shape:
    """The architecture, as far as memory is concerned."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool = True

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    @property
    def layer_linear_params(self) -> int:
        h, i = self.hidden, self.intermediate
        return 2 * h * h + 2 * h * self.kv_dim + 3 * h * i

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def params(self) -> int:
        return self.layers * (self.layer_linear_params + 2 * self.hidden) + self.embedding_params + self.hidden


@dataclass(frozen=True)
class Setting:
    seq: int = 1024
    micro_batch: int = 1
    precision: str = "bf16"  # bf16 autocast over fp32 master weights, or fp32
    optimizer: str = "adamw"  # adamw, adamw-8bit, sgd (momentum)
    method: str = "full"  # full or lora
    lora_rank: int = 16
    lora_targets: str = "all-linear"  # attention, mlp, all-linear
    qlora: bool = False  # the frozen base in 4-bit NF4 (method lora)
    activation_checkpointing: bool = False
    world: int = 1  # FSDP processes


OPTIMIZER_BYTES = {"adamw": 8, "adamw-8bit": 2, "sgd": 4}


def shape_from_config(config: dict) -> Shape:
    """From a transformers config (config.json's fields)."""
    c = config.get("text_config", config)
    try:
        heads = c["num_attention_heads"]
        return Shape(
            layers=c["num_hidden_layers"],
            hidden=c["hidden_size"],
            intermediate=c["intermediate_size"],
            heads=heads,
            kv_heads=c.get("num_key_value_heads") or heads,
            vocab=c["vocab_size"],
            tied=bool(c.get("tie_word_embeddings", True)),
        )
    except KeyError as e:
        raise ConfigError(f"model config has no {e.args[0]}: not a Llama-style decoder the planner knows") from None


def shape_from_folder(folder: str | Path) -> Shape:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{folder}: no config.json (give an HF model folder)")
    return shape_from_config(json.loads(path.read_text()))


def shape_from_size(params: float, layers: int, hidden: int, vocab: int = 32000, heads: int | None = None) -> Shape:
    """A Llama-shaped model of about `params` parameters: what the layers and embeddings leave
    goes to the MLP's intermediate size."""
    heads = heads or max(1, hidden // 64)
    embed = vocab * hidden
    per_layer = (params - embed) / layers - 4 * hidden * hidden
    intermediate = max(1, round(per_layer / (3 * hidden)))
    return Shape(layers, hidden, intermediate, heads, heads, vocab)


def _lora_params(shape: Shape, s: Setting) -> int:
    h, kv, i, r = shape.hidden, shape.kv_dim, shape.intermediate, s.lora_rank
    attention = r * ((h + h) * 2 + (h + kv) * 2)  # q, o: h -> h; k, v: h -> kv
    mlp = r * 3 * (h + i)
    per_layer = {"attention": attention, "mlp": mlp, "all-linear": attention + mlp}[s.lora_targets]
    return shape.layers * per_layer


def activation_bytes_per_token_layer(shape: Shape, s: Setting) -> float:
    a = 2 if s.precision == "bf16" else 4
    h, kv, i = shape.hidden, shape.kv_dim, shape.intermediate
    norms = 2 * 2 * h * 4  # two RMSNorms, input and output, fp32
    repeated = 2 * h if shape.kv_heads != shape.heads else 0
    attention = h + 2 * kv + repeated + 2 * h  # q, k, v (after RoPE), k/v repeated, output and its copy
    mlp = 4 * i
    cast = 2 * h + i if s.precision == "bf16" else 0  # bf16 copies of the norms' outputs and the product
    return norms + (attention + mlp + cast) * a


def breakdown(shape: Shape, s: Setting) -> dict[str, float]:
    """Bytes of each part, and the peak (see the module's docstring)."""
    if s.method not in ("full", "lora"):
        raise ConfigError(f"method must be full or lora, got {s.method!r}")
    if s.optimizer not in OPTIMIZER_BYTES:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZER_BYTES)}, got {s.optimizer!r}")
    if s.qlora and s.method != "lora":
        raise ConfigError("a quantised (QLoRA) base trains LoRA only: set method lora")
    w = max(1, s.world)
    linear = shape.layers * shape.layer_linear_params
    rest = shape.params - linear  # embeddings and norms
    if s.method == "full":
        trainable = shape.params
        weights = 4 * shape.params
    else:
        trainable = _lora_params(shape, s)
        base = (0.5 + 0.127 / 8) * linear + 2 * rest if s.qlora else 4 * shape.params
        weights = base + 4 * trainable
    if s.precision == "bf16" and not s.qlora:
        weights += 2 * linear  # autocast's bf16 copies of the matmul weights
    gathered = 4 * shape.layer_linear_params if w > 1 else 0  # FSDP: one layer unsharded at a time
    tokens = s.seq * s.micro_batch
    per_layer = activation_bytes_per_token_layer(shape, s)
    if s.activation_checkpointing:
        activations = tokens * (shape.layers * 4 * shape.hidden + per_layer)
    else:
        activations = tokens * shape.layers * per_layer
    a = 2 if s.precision == "bf16" else 4
    logits = tokens * shape.vocab * (a + 8)
    parts = {
        "weights": weights / w + gathered,
        "gradients": 4 * trainable / w,
        "optimizer": OPTIMIZER_BYTES[s.optimizer] * trainable / w,
        "activations": activations,
        "logits": logits,
    }
    # gradients fill in while the activations are freed, so the peak is the larger of two moments
    first_grads = 4 * shape.vocab * shape.hidden / w if s.method == "full" else 0  # the output layer's, first
    backward_start = parts["weights"] + parts["optimizer"] + activations + logits + first_grads
    temporaries = 4 * trainable / w  # the optimizer's intermediate results (foreach kernels)
    step = parts["weights"] + parts["gradients"] + parts["optimizer"] + temporaries
    return {**parts, "peak": max(backward_start, step), "trainable_params": trainable}


def device_bytes(device: str) -> float:
    """Usable bytes of a named device ("H100-80GB", ...) or "cpu:24GiB" / "cpu:64GB"."""
    m = re.fullmatch(r"cpu:(\d+(?:\.\d+)?)\s*(GiB|GB)", device.strip(), flags=re.IGNORECASE)
    if m:
        size = float(m.group(1)) * (GIB if m.group(2).lower() == "gib" else 1e9)
        return size - RESERVED
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; known: {', '.join(DEVICES)}, or cpu:<N>GiB")
    return DEVICES[device] - RESERVED


def largest_micro_batch(shape: Shape, s: Setting, device: str) -> int:
    """The largest micro-batch whose peak fits the device (0: not even one sequence fits)."""
    budget = device_bytes(device)
    if breakdown(shape, replace(s, micro_batch=1))["peak"] > budget:
        return 0
    low, high = 1, 2
    while breakdown(shape, replace(s, micro_batch=high))["peak"] <= budget:
        low, high = high, high * 2
    while high - low > 1:  # the peak grows with the micro-batch: bisect
        mid = (low + high) // 2
        low, high = (mid, high) if breakdown(shape, replace(s, micro_batch=mid))["peak"] <= budget else (low, mid)
    return low


def recipe_plan(recipe, stage: str, run_dir: Path, precision: str) -> tuple[Shape, Setting]:
    """The model and the settings a recipe's `stage` (pretrain, adapt, sft) will train with; its
    `precision` "auto" resolved by the caller (`precision`)."""
    t = recipe.train
    world = t.nproc_per_node * t.nnodes if t.fsdp else 1
    common = dict(activation_checkpointing=t.activation_checkpointing, world=world)
    if stage == "pretrain" and not t.init_from:
        from lmforge.train.model import hf_config

        config = hf_config(recipe.model, recipe.tokenizer.vocab_size, t.seq_len, 0, None).to_dict()
        return shape_from_config(config), Setting(t.seq_len, t.micro_batch_size, precision, **common)
    if stage in ("pretrain", "adapt"):
        from lmforge.models import resolve_model_dir, run_model

        base = t.init_from if stage == "pretrain" else recipe.adapt.base
        folder = resolve_model_dir(base) if base else run_model(run_dir, before="adapt")
        if folder is None:
            raise ConfigError(f"{stage}: no base model to plan for (set adapt.base or train.init_from)")
        seq = (
            max([p.seq_len or t.seq_len for p in recipe.adapt.phases] or [t.seq_len]) if stage == "adapt" else t.seq_len
        )
        return shape_from_folder(folder), Setting(seq, t.micro_batch_size, precision, **common)
    if stage == "sft":
        from lmforge.models import resolve_model_dir, run_model

        s = recipe.sft
        folder = resolve_model_dir(s.model) if s.model else run_model(run_dir, before="sft")
        if folder is None:
            raise ConfigError("sft: no model to plan for (set sft.model, or run the stages before sft)")
        shape = shape_from_folder(folder)
        config = json.loads((Path(folder) / "config.json").read_text())
        seq = s.max_len or config.get("max_position_embeddings", 2048)
        targets = s.lora_targets if isinstance(s.lora_targets, str) else "all-linear"
        method = "full" if s.method == "full" else "lora"
        return shape, Setting(seq, s.batch_size, precision, "adamw", method, s.lora_rank, targets, s.qlora, **common)
    raise ConfigError(f"plan --memory: stage must be pretrain, adapt or sft, got {stage!r}")
