"""What sft and dpo share: how the model is wrapped for a tuning method (full, LoRA, LLaMA-Adapter
through `peft`, LLaMA-Adapter V2 with lmforge's units on top), and `tune`, which runs the training core (lmforge/train/loop.py) for them with
exact resume, DDP or FSDP2, and gathers the result into one plain model on rank 0.

A bad setting fails in one line naming the stage's own key (`sft.lora_targets`, `train.fsdp`).
"""

import math
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lmforge.errors import ConfigError
from lmforge.models import adapter_v2
from lmforge.recipe import TrainConfig
from lmforge.recipe.schema import Tuning
from lmforge.train import loop
from lmforge.train.checkpoint import FULL
from lmforge.train.distributed import Dist, barrier, wrap_model
from lmforge.train.documents import use_attention
from lmforge.train.optim import make_optimizer
from lmforge.train.precision import use_bf16
from lmforge.train.resume import load_resume_optimizer, load_resume_weights, resume_tag, save_resume
from lmforge.train.schedule import lr_at


def attach_method(model, cfg: Tuning, section: str, seed: int = 0):
    """`model` ready for `cfg.method`; `section` ("sft", "dpo") names the recipe keys in errors. The
    adapter's random initial weights come from `seed`: the same run gives the same adapter."""
    if cfg.method == "full":
        return model
    from peft import AdaptionPromptConfig, LoraConfig, get_peft_model

    torch.manual_seed(seed)

    # peft asks transformers a deprecated question on every wrap; the answer is right, the warning noise
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

    if cfg.method == "lora":
        peft_cfg = LoraConfig(
            r=cfg.lora_rank,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=lora_targets(model, cfg.lora_targets, section),
            use_dora=cfg.dora,
            use_rslora=cfg.rslora,
            task_type="CAUSAL_LM",
        )
    else:
        if model.config.model_type not in ("llama", "mistral"):
            raise ConfigError(
                f"{section}.method = {cfg.method!r}: peft's adaption prompts exist for Llama and Mistral, "
                f"not {model.config.model_type}; use lora"
            )
        if cfg.method == "adapter_v2":  # before peft wraps the attention: units keep the base's names
            adapter_v2.add_units(model)
        peft_cfg = AdaptionPromptConfig(
            adapter_len=cfg.adapter_len,
            task_type="CAUSAL_LM",
            adapter_layers=min(cfg.adapter_layers, model.config.num_hidden_layers),
        )
    model = get_peft_model(model, peft_cfg)
    for p in adapter_v2.unit_parameters(model).values():  # peft froze all but its prompts
        p.requires_grad_(True)
    return model


def method_parameters(config, cfg: Tuning, section: str) -> dict[str, int]:
    """Trainable parameters of LoRA (this block's rank and targets) and LLaMA-Adapter V1 and V2 on
    a model of `config`, built on the meta device (no memory, no weights): the report's comparison
    of what each method trains. Methods the family cannot take are left out."""
    from transformers import AutoModelForCausalLM

    plain = type(config).from_dict({k: v for k, v in config.to_dict().items() if k != "quantization_config"})
    counts = {}
    for method in ("lora", "adapter", "adapter_v2"):
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(plain)  # a QLoRA base counts as its 16-bit self
        try:
            model = attach_method(model, cfg.model_copy(update={"method": method, "qlora": False}), section)
        except ConfigError:
            continue
        counts[method] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return counts


def load_quantized(model_dir, cfg: Tuning, section: str, device: torch.device):
    """QLoRA's base: every linear layer but the output in 4-bit NF4 with double quantisation, compute
    in bf16 where the chip has it, norms kept in fp32 (peft's k-bit preparation)."""
    if cfg.method != "lora":
        raise ConfigError(f'{section}.qlora: QLoRA trains LoRA on a 4-bit base; set {section}.method = "lora"')
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(f"{section}.qlora runs in one process for now: start it without torchrun")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"{section}.qlora needs bitsandbytes: pip install 'lmforge[qlora]' ({e})") from None
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    from lmforge.models import load_causal_lm

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if use_bf16(cfg.precision, device) else torch.float32,
        llm_int8_skip_modules=unquantizable_linears(model_dir),
    )
    model = load_causal_lm(model_dir, quantization_config=quantization, device_map={"": str(device)})
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


NF4_BLOCK = 64  # bitsandbytes quantises 4-bit weights in blocks of 64 along a row


def unquantizable_linears(model_dir) -> list[str]:
    """Linear layers that stay in 16/32-bit under QLoRA: the output layer (as transformers keeps it)
    and any layer whose rows are not whole NF4 blocks — bitsandbytes' CPU kernels cannot repack those
    and fail at the first forward pass without grad (evaluation, generation)."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    from lmforge.models import resolve_model_dir

    with init_empty_weights():
        skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(resolve_model_dir(model_dir)))
    out = skeleton.get_output_embeddings()
    return [
        name
        for name, m in skeleton.named_modules()
        if isinstance(m, torch.nn.Linear) and (m is out or m.in_features % NF4_BLOCK)
    ]


def merged_16bit(model, model_dir, cfg: Tuning, section: str, seed: int):
    """A QLoRA result as a plain model: the 16-bit base with the trained adapter merged in."""
    from lmforge.models import load_causal_lm

    plain = attach_method(load_causal_lm(model_dir, dtype=torch.float32), cfg, section, seed)
    trained = {n: p.detach().float() for n, p in model.named_parameters() if p.requires_grad}
    missing = set(trained) - set(dict(plain.named_parameters()))
    assert not missing, missing  # the same adapter on the same architecture
    plain.load_state_dict(trained, strict=False)
    return plain.merge_and_unload().eval()


PRESETS = {"attention": ("self_attn", "attn", "attention"), "mlp": ("mlp", "feed_forward", "ffn")}
# families that fuse projections (Phi-3): a listed name stands for the fused layer that holds it
FUSED = {
    "q_proj": "qkv_proj",
    "k_proj": "qkv_proj",
    "v_proj": "qkv_proj",
    "gate_proj": "gate_up_proj",
    "up_proj": "gate_up_proj",
}


def lora_targets(model, targets: list[str] | str, section: str) -> list[str]:
    """The linear layers LoRA wraps, by leaf name: the listed ones this model has, or a preset's
    (the linear layers inside each block's attention or MLP, or all of them but the output layer).
    Llama's names also select a family's fused layers (q_proj -> Phi-3's qkv_proj), so the default
    list means the same layers in every family."""
    output = model.get_output_embeddings()
    linear = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not output}
    leaves = sorted({n.rsplit(".", 1)[-1] for n in linear})
    if targets == "all-linear":
        found = leaves
    elif isinstance(targets, str):
        parents = PRESETS[targets]
        found = sorted({n.rsplit(".", 1)[-1] for n in linear if any(f".{p}." in f".{n}" for p in parents)})
    else:
        named = (t if t in leaves else FUSED.get(t) for t in targets)
        found = [t for t in dict.fromkeys(named) if t in leaves]
    if not found:
        raise ConfigError(
            f"{section}.lora_targets: none of {targets} is a linear layer of this model; its linear layers are {leaves}"
        )
    return found


@dataclass
class Tuned:
    steps: int
    resumed_from: int  # the step a killed run went on from (0: a fresh start)
    done: loop.Done
    trainable_params: int
    model: torch.nn.Module | None  # the trained model, plain (unwrapped), on rank 0; None elsewhere
    attention: str  # the attention kernel it trained with


def tune(
    model,
    cfg: Tuning,
    section: str,
    d: Dist,
    items: int,
    fingerprint: str,
    seed: int,
    batch: Callable[[int], object],
    loss: Callable[[torch.nn.Module, object], loop.Out],
    log,
    resume_dir: Path | None,
    train: TrainConfig | None = None,
    rebuild: Callable[[], torch.nn.Module] | None = None,
    weight_decay: float = 0.0,
    packed: bool = False,
    evaluate_with: Callable[[int, torch.nn.Module], Callable | None] | None = None,
) -> Tuned:
    """Train `model` (already wrapped by `attach_method`) for cfg.epochs over `items` examples;
    `batch(i)` is the i-th global micro-batch and `loss(module, batch)` its loss. With `resume_dir`,
    checkpoint every cfg.checkpoint_every steps and continue a killed run from there. `train`, the
    recipe's [train] block, says whether to shard (`fsdp`) and to recompute activations
    (`activation_checkpointing`); `rebuild()` makes an unsharded copy of the model (FSDP2 only) for
    rank 0 to load the gathered weights into. `packed`: batches hold several documents per row
    (the attention kernel may change for them, train.attention). `evaluate_with(steps, model)` makes
    the loop's evaluation hook (eval/during.py)."""
    train = train or TrainConfig()
    fsdp = train.fsdp
    if fsdp and d.world == 1:
        raise ConfigError("train.fsdp needs several processes: launch with torchrun or set train.nproc_per_node")
    steps = max(1, math.ceil(items * cfg.epochs / (cfg.batch_size * cfg.grad_accum * d.world)))
    schedule = TrainConfig(
        lr=cfg.lr, warmup_steps=min(cfg.warmup_steps, steps // 2), max_steps=steps, schedule="cosine"
    )
    bf16 = use_bf16(cfg.precision, d.device)
    tag = resume_tag(fingerprint, cfg, seed, d.world)
    start = load_resume_weights(resume_dir, model, tag, section) if resume_dir and cfg.resume else loop.Position()
    if not getattr(model, "is_loaded_in_4bit", False):  # a quantized base was placed when loaded
        model.to(d.device)
    attention, loaded_attention = use_attention(model, train.attention, d.device, packed)
    wrapped = wrap_model(model, d, fsdp, bf16, train.activation_checkpointing)
    optimizer = make_optimizer(model, cfg.lr, weight_decay, betas=(0.9, 0.999), b_lr_scale=cfg.loraplus_lr_ratio or 1.0)
    if start.step:
        load_resume_optimizer(resume_dir, wrapped, optimizer, d)
    else:
        torch.manual_seed(seed)  # dropout: the same masks in every run from the start

    def save(pos: loop.Position, last: dict) -> None:
        save_resume(resume_dir, model, wrapped, optimizer, pos, tag, d)

    job = loop.Job(
        name=section,
        steps=steps,
        grad_accum=cfg.grad_accum,
        lr_at=lambda step: lr_at(step, schedule),
        batch=batch,
        loss=lambda b: loss(wrapped, b),
        clip=1.0,
        log_every=cfg.log_every,
        save_at=lambda step: bool(resume_dir) and step % cfg.checkpoint_every == 0 and step < steps,
        save=save if resume_dir else None,
        evaluate=evaluate_with(steps, model) if evaluate_with else None,
        autocast_dtype=torch.bfloat16 if bf16 and not fsdp else None,
    )
    done = loop.run(job, wrapped, optimizer, d, start, log)
    model.set_attn_implementation(loaded_attention)  # the trained model is measured and samples next
    if resume_dir and d.is_main and not done.interrupted:  # finished: nothing to resume any more
        shutil.rmtree(resume_dir, ignore_errors=True)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)  # DTensors: their global size
    if fsdp:  # FSDP2 sharded the model in place: gather it into a plain copy on rank 0
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        full = get_model_state_dict(wrapped, options=FULL)
        plain = None
        if d.is_main:
            plain = rebuild()
            plain.load_state_dict(full)
            plain.eval()
    else:
        plain = model if d.is_main else None
    barrier(d)
    return Tuned(steps, start.step, done, trainable, plain, attention)
