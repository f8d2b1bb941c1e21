"""Training verbs: `pretrain`, `adapt`, `sft`, `dpo`, and `plan` (what a training run will cost)."""

from typing import Annotated, Optional

import typer

from lmforge.cli.common import RecipeArg, RunDirOpt, SetOpt, console, flags, load, print_samples, stage
from lmforge.errors import LmforgeError


def register(app: typer.Typer) -> None:
    for verb in (pretrain, adapt, sft, dpo, plan):
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
    set: SetOpt = None,
):
    """Chinchilla compute-optimal plan for a FLOP budget, a model size, or a recipe's model."""
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
