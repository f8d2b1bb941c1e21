"""Training verbs: `pretrain`, `adapt`, `sft`, `dpo`, `merge`, `distill`, and `plan` (what a training run will cost)."""

from typing import Annotated, Optional

import typer

from lmforge.cli.common import RecipeArg, RunDirOpt, SetOpt, console, flags, load, print_samples, stage
from lmforge.errors import LmforgeError


def register(app: typer.Typer) -> None:
    for verb in (pretrain, adapt, sft, dpo, merge, distill, plan):
        app.command()(verb)


def elsewhere(s: dict) -> bool:
    """The stage ran in torchrun's processes: this one launched them, or is not rank 0 (which prints)."""
    return "launched" in s or "worker_rank" in s


def pretrain(recipe: RecipeArg = None, run_dir: RunDirOpt = None, set: SetOpt = None):
    """Pretrain a Llama/Mistral-family model from scratch (resumes from the run's latest checkpoint)."""
    s = stage("pretrain", recipe, run_dir, {}, set)
    if s.get("interrupted"):
        raise typer.Exit(143)
    if "steps" in s:
        console.print(f"pretrain: {s['steps']} steps, final loss {s['final_loss']:.4f} -> {s['checkpoint']}")


def adapt(
    recipe: RecipeArg = None,
    base: Annotated[Optional[str], typer.Option(help="Model to adapt: HF folder, run, .gguf file or Hub id.")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Continued pretraining on a new language: mixes with replay, phases, tokenizer extension, RoPE scaling."""
    s = stage("adapt", recipe, run_dir, {"adapt": flags(base=base)}, set)
    if s.get("interrupted"):
        raise typer.Exit(143)
    if elsewhere(s):
        return
    for lang, after in s["after"]["bits_per_byte"].items():
        before = s["before"]["bits_per_byte"][lang]
        console.print(f"{lang}: {before:.4f} -> {after:.4f} bits/byte ({(after - before) / before:+.1%})")
    console.print(f"adapted model: {s['model']}")


def sft(recipe: RecipeArg = None, run_dir: RunDirOpt = None, set: SetOpt = None):
    """Instruction-tune the run's model (full, LoRA or LLaMA-Adapter) into a chat model."""
    s = stage("sft", recipe, run_dir, {}, set)
    if s.get("interrupted"):
        raise typer.Exit(143)
    if elsewhere(s):
        return
    for lang, before in s["heldout_loss_before"].items():
        console.print(f"{lang}: held-out loss {before:.4f} -> {s['heldout_loss_after'][lang]:.4f}")
    print_samples(s["samples"])
    console.print(f"chat model: {s['model']}")


def dpo(
    recipe: RecipeArg = None,
    model: Annotated[Optional[str], typer.Option(help="Model to tune (default: the run's newest).")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Preference tuning (DPO, conservative DPO, IPO) after sft, full or LoRA."""
    s = stage("dpo", recipe, run_dir, {"dpo": flags(model=model)}, set)
    if s.get("interrupted"):
        raise typer.Exit(143)
    if elsewhere(s):
        return
    console.print(f"dpo: {s['pairs']} pairs, {s['steps']} steps, final loss {s['final']['loss']:.4f} -> {s['output']}")
    if s["heldout_reward_accuracy_after"] is not None:
        console.print(
            f"held-out preference accuracy (implicit reward) 0.500 -> {s['heldout_reward_accuracy_after']:.3f}, "
            f"KL {s['heldout_kl_per_token']:.4f} nats/token"
        )


def merge(
    recipe: RecipeArg = None,
    method: Annotated[
        Optional[str], typer.Option(help="linear, task_arithmetic, slerp, ties, dare or chat_vector.")
    ] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", help="A model to merge (repeat).")] = None,
    weight: Annotated[Optional[list[float]], typer.Option("--weight", help="Its weight (repeat, in order).")] = None,
    base: Annotated[Optional[str], typer.Option(help="Base for task vectors / the chat vector.")] = None,
    chat: Annotated[Optional[str], typer.Option(help="Chat vector: the chat model tuned from --base.")] = None,
    onto: Annotated[Optional[str], typer.Option(help="Chat vector: --base after language adaptation.")] = None,
    chat_vector: Annotated[bool, typer.Option("--chat-vector", help="onto + (chat - base).")] = False,
    t: Annotated[Optional[float], typer.Option(help="SLERP position, 0 to 1.")] = None,
    density: Annotated[Optional[float], typer.Option(help="TIES: share kept; DARE: keep probability.")] = None,
    tokenizer_from: Annotated[Optional[str], typer.Option(help="The result's tokenizer, when inputs differ.")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Merge models of one architecture (linear, task arithmetic, SLERP, TIES, DARE, chat vector) -> <run>/merged."""
    values = flags(
        method="chat_vector" if chat_vector else method,
        models=model,
        weights=weight,
        base=base,
        chat=chat,
        onto=onto,
        t=t,
        density=density,
        tokenizer_from=tokenizer_from,
    )
    s = stage("merge", recipe, run_dir, {"merge": values}, set)
    for lang, losses in s["heldout_loss"].items():
        console.print(f"{lang}: held-out chat loss " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
    console.print(f"merge ({s['method']}, {s['tensors']} tensors): {s['output']}")


def distill(recipe: RecipeArg = None, run_dir: RunDirOpt = None, set: SetOpt = None):
    """Distilling step-by-step: a teacher endpoint's rationales as a second task; vs label-only at each data size."""
    s = stage("distill", recipe, run_dir, {}, set)
    if s.get("interrupted"):
        raise typer.Exit(143)
    if elsewhere(s):
        return
    t = s["teacher"]
    console.print(
        f"teacher: {t.get('answered', 0)} of {s['inputs']} answered, {t.get('agreed', 0)} agreed; student trains on {s['kept']}"
    )
    for r in s["results"]:
        console.print(
            f"{r['method']:>12} {r['inputs']:>5} inputs ({r['share']:.0%}): held-out accuracy {r['accuracy']:.3f}"
        )
    console.print(f"student: {s['model']}")


MEMORY_DEVICES = ["H100-80GB", "A100-40GB", "RTX-4090-24GB", "cpu:24GiB"]


def plan(
    recipe: RecipeArg = None,
    params: Annotated[Optional[float], typer.Option(help="Model size in parameters, e.g. 125e6.")] = None,
    flops: Annotated[Optional[float], typer.Option(help="Compute budget in FLOPs, e.g. 1e20.")] = None,
    tokens: Annotated[
        Optional[float], typer.Option(help="Train on this many tokens instead of 20 per parameter.")
    ] = None,
    gpu: Annotated[str, typer.Option(help="GPU model for the time estimate.")] = "H100-SXM",
    num_gpus: Annotated[int, typer.Option(help="Number of GPUs.")] = 1,
    mfu: Annotated[float, typer.Option(help="Model FLOPs utilisation to assume.")] = 0.4,
    memory: Annotated[bool, typer.Option("--memory", help="Peak training memory instead of compute.")] = False,
    stage_name: Annotated[
        str, typer.Option("--stage", help="--memory with a recipe: pretrain, adapt or sft.")
    ] = "pretrain",
    layers: Annotated[Optional[int], typer.Option(help="--memory: decoder layers.")] = None,
    hidden: Annotated[Optional[int], typer.Option(help="--memory: hidden size.")] = None,
    vocab: Annotated[int, typer.Option(help="--memory: vocabulary size.")] = 32000,
    seq: Annotated[Optional[int], typer.Option(help="--memory: sequence length.")] = None,
    micro_batch: Annotated[Optional[int], typer.Option(help="--memory: micro-batch (sequences).")] = None,
    precision: Annotated[Optional[str], typer.Option(help="--memory: bf16 or fp32.")] = None,
    optimizer: Annotated[str, typer.Option(help="--memory: adamw, adamw-8bit or sgd.")] = "adamw",
    lora_rank: Annotated[Optional[int], typer.Option(help="--memory: train LoRA of this rank (else full).")] = None,
    qlora: Annotated[Optional[bool], typer.Option("--qlora", help="--memory: 4-bit NF4 base under LoRA.")] = None,
    activation_checkpointing: Annotated[
        Optional[bool], typer.Option("--activation-checkpointing", help="--memory: recompute activations.")
    ] = None,
    fsdp_world: Annotated[Optional[int], typer.Option(help="--memory: FSDP processes sharing the model.")] = None,
    device: Annotated[
        Optional[list[str]], typer.Option(help="--memory: device(s) for the largest micro-batch, e.g. cpu:24GiB.")
    ] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Chinchilla compute-optimal plan for a FLOP budget, a model size, or a recipe's model; with
    --memory, the peak training memory and the largest micro-batch per device."""
    if memory:
        over = dict(
            seq=seq,
            micro_batch=micro_batch,
            lora_rank=lora_rank,
            qlora=qlora,
            activation_checkpointing=activation_checkpointing,
            world=fsdp_world,
        )
        size = dict(params=params, layers=layers, hidden=hidden, vocab=vocab)
        return _plan_memory(
            recipe, stage_name, run_dir, set, size, over, precision, optimizer, device or MEMORY_DEVICES
        )
    from lmforge.plan import plan_for_compute, plan_for_params
    from lmforge.plan.recipe_size import recipe_params

    if flops is not None:
        p = plan_for_compute(flops, gpu, num_gpus, mfu)
    else:
        if params is None:
            if recipe is None:
                raise LmforgeError("plan: give --flops, --params or a recipe")
            params = recipe_params(load(recipe, {}, set))
        p = plan_for_params(params, gpu, num_gpus, mfu, tokens)
    console.print(f"parameters       {p.params / 1e6:,.1f}M")
    console.print(f"tokens           {p.tokens / 1e9:,.3f}B ({p.tokens / p.params:.1f} per parameter)")
    console.print(f"compute          {p.flops:.3e} FLOPs")
    console.print(f"predicted loss   {p.predicted_loss:.3f} nats/token (Chinchilla fit, MassiveText)")
    console.print(f"time             {p.hours:,.2f} h on {p.num_gpus}x {p.gpu} at {p.mfu:.0%} MFU")


def _plan_memory(recipe, stage_name, run_dir, overrides, size, over, precision, optimizer, devices) -> None:
    from dataclasses import replace

    from lmforge.pipeline import run_dir_for
    from lmforge.plan.memory import GIB, Setting, breakdown, largest_micro_batch, recipe_plan, shape_from_size
    from lmforge.train.precision import cpu_has_native_bf16

    gpus = any(not d.lower().startswith("cpu:") for d in devices)
    auto = "bf16" if gpus or cpu_has_native_bf16() else "fp32"
    if recipe is not None:
        r = load(recipe, {}, overrides)
        resolved = precision or {"sft": r.sft.precision}.get(stage_name, r.train.precision)
        shape, setting = recipe_plan(r, stage_name, run_dir_for(r, run_dir), auto if resolved == "auto" else resolved)
    elif size["params"] and size["layers"] and size["hidden"]:
        shape = shape_from_size(size["params"], size["layers"], size["hidden"], size["vocab"])
        setting = Setting(precision=precision or auto)
    else:
        raise LmforgeError("plan --memory: give a recipe, or --params, --layers and --hidden")
    chosen = {k: v for k, v in over.items() if v is not None}
    if "lora_rank" in chosen or chosen.get("qlora"):
        chosen["method"] = "lora"
    setting = replace(setting, optimizer=optimizer, **chosen)
    b = breakdown(shape, setting)
    console.print(
        f"model: {shape.params / 1e6:,.1f}M parameters, {shape.layers} layers, d={shape.hidden}, "
        f"vocabulary {shape.vocab:,}; {setting.method}"
        + (
            f" rank {setting.lora_rank}" + (" on a 4-bit base" if setting.qlora else "")
            if setting.method == "lora"
            else ""
        )
        + f", {setting.precision}, {setting.optimizer}, seq {setting.seq} x micro-batch {setting.micro_batch}"
        + (", activation checkpointing" if setting.activation_checkpointing else "")
        + (f", FSDP over {setting.world}" if setting.world > 1 else ""),
        highlight=False,
    )
    for part in ("weights", "gradients", "optimizer", "activations", "logits", "peak"):
        console.print(f"{part:<12} {b[part] / GIB:9.2f} GiB", highlight=False)
    for d in devices:
        console.print(f"largest micro-batch on {d}: {largest_micro_batch(shape, setting, d)}", highlight=False)
