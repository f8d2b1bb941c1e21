"""`lmforge run RECIPE`: run the recipe's stages in order in one run directory.

Each stage is called through its public entry point with its own recipe section; stages
share nothing but files in the run directory, so any of them can also be run alone.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lmforge.errors import ConfigError
from lmforge.recipe import Recipe, recipe_from_dict
from lmforge.rundir import atomic_write_text


def run_dir_for(recipe: Recipe, run_dir: str | Path | None) -> Path:
    return Path(run_dir) if run_dir else Path(recipe.run.out_dir) / recipe.run.name


def save_resolved_recipe(recipe: Recipe, run_dir: Path) -> Path:
    """The fully resolved recipe, replayable with `lmforge run <run>/recipe.yaml`."""
    path = run_dir / "recipe.yaml"
    atomic_write_text(path, yaml.safe_dump(recipe.model_dump(), sort_keys=False, allow_unicode=True))
    return path


def expand_run_dir(recipe: Recipe, run_dir: Path) -> Recipe:
    """`{run}` in any recipe string stands for the run directory, so a stage can read what an
    earlier stage wrote (e.g. `tokenize.train = ["{run}/curate/data/en"]`) whatever the run's name."""

    def sub(value):
        if isinstance(value, str):
            return value.replace("{run}", str(run_dir))
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value

    return recipe_from_dict(sub(recipe.model_dump()))


def launch_recipe(recipe: Recipe, run_dir: Path, stage: str) -> Path:
    """The resolved recipe that every process of a torchrun relaunch reads (nothing re-parsed)."""
    path = run_dir / "launch" / f"{stage}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(recipe.model_dump(), sort_keys=False, allow_unicode=True))
    return path


DISTRIBUTED = {
    "pretrain",
    "adapt",
    "sft",
    "dpo",
    "eval",
    "distill",
}  # stages whose processes share one job under torchrun


def run_stage(stage: str, recipe: Recipe, run_dir: Path) -> Mapping[str, Any]:
    """Run one named stage of the recipe in the run directory; its result is the stage's own typed
    dict (`CurateResult`, `SftResult`, ...), which is also what the manifest records. A training
    stage whose recipe asks for several processes (`train.nproc_per_node`, `train.nnodes`)
    relaunches itself under torchrun; under torchrun, every process runs it and they share the job."""
    recipe = expand_run_dir(recipe, run_dir)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and stage not in DISTRIBUTED:
        # N copies of a one-process stage would each do the whole job and write the same files
        raise ConfigError(
            f"{stage} runs in one process, and this is process {os.environ.get('RANK', '?')} of "
            f"{os.environ['WORLD_SIZE']}: run it without torchrun (stages that run under torchrun: "
            f"{', '.join(sorted(DISTRIBUTED))})"
        )
    if stage not in DISTRIBUTED:
        return _run_stage(stage, recipe, run_dir)
    from lmforge.train import run_under_torchrun, under_torchrun
    from lmforge.train.distributed import teardown_distributed

    t = recipe.train
    if (t.nproc_per_node > 1 or t.nnodes > 1) and not under_torchrun():
        args = [stage, str(launch_recipe(recipe, run_dir, stage)), "--run-dir", str(run_dir)]
        run_under_torchrun(
            t.nproc_per_node, args, nnodes=t.nnodes, node_rank=t.node_rank, rdzv_endpoint=t.rdzv_endpoint
        )
        return {"launched": "torchrun"}
    if t.fsdp and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        raise ConfigError("train.fsdp needs several processes: launch with torchrun or set train.nproc_per_node")
    try:
        return _run_stage(stage, recipe, run_dir)
    finally:
        teardown_distributed()


def _run_stage(stage: str, recipe: Recipe, run_dir: Path) -> Mapping[str, Any]:
    if stage == "curate":
        from lmforge.curate import run_curate_stage

        return run_curate_stage(recipe.curate, run_dir)
    if stage == "tokenizer":
        from lmforge.tokenizer import run_tokenizer_stage

        return run_tokenizer_stage(recipe.tokenizer, run_dir)
    if stage == "tokenize":
        from lmforge.data import run_tokenize_stage

        return run_tokenize_stage(recipe.tokenize, run_dir)
    if stage == "pretrain":
        from lmforge.train import pretrain

        return pretrain(recipe.model, recipe.train, run_dir, recipe.run.seed)
    if stage == "adapt":
        from lmforge.adapt import run_adapt_stage

        return run_adapt_stage(recipe.adapt, recipe.train, run_dir, recipe.run.seed)
    if stage == "eval":
        from lmforge.eval import run_eval_stage

        return run_eval_stage(recipe.eval, run_dir)
    if stage == "generate":
        from lmforge.generate import run_generate_stage

        return run_generate_stage(recipe.generate, run_dir)
    if stage == "sft":
        from lmforge.sft import run_sft_stage

        return run_sft_stage(recipe.sft, run_dir, recipe.run.seed, tracking=recipe.train)
    if stage == "release":
        from lmforge.release import build_release

        return build_release(recipe.release, run_dir)
    if stage == "export":
        from lmforge.export.stage import run_export_stage

        return run_export_stage(recipe.export, run_dir)
    if stage == "translate":
        from lmforge.translate import run_translate_stage

        return run_translate_stage(recipe.translate, run_dir)
    if stage == "self_instruct":
        from lmforge.self_instruct import run_self_instruct_stage

        return run_self_instruct_stage(recipe.self_instruct, run_dir)
    if stage == "judge":
        from lmforge.judge import run_judge_stage

        return run_judge_stage(recipe.judge, run_dir)
    if stage == "dpo":
        from lmforge.dpo import run_dpo_stage

        return run_dpo_stage(recipe.dpo, run_dir, recipe.run.seed, tracking=recipe.train)
    if stage == "decontaminate":
        from lmforge.decontaminate import run_decontaminate

        return run_decontaminate(recipe.decontaminate, run_dir)
    if stage == "merge":
        from lmforge.merge import run_merge_stage

        return run_merge_stage(recipe.merge, run_dir, recipe.run.seed)
    if stage == "reverse_instruct":
        from lmforge.reverse_instruct import run_reverse_instruct_stage

        return run_reverse_instruct_stage(recipe.reverse_instruct, run_dir)
    if stage == "distill":
        from lmforge.distill import run_distill_stage

        return run_distill_stage(recipe.distill, run_dir, recipe.run.seed)
    raise ConfigError(f"run.stages: unknown stage {stage!r}")
