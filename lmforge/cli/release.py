"""Verbs that finish a run: `release`, `export gguf`, and `run` (every stage of a recipe in order)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from lmforge.cli.common import RunDirOpt, SetOpt, console, load, print_samples
from lmforge.cli.data import print_curate
from lmforge.errors import LmforgeError

export_app = typer.Typer(help="Export a model to another runtime's format.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(release)
    app.add_typer(export_app, name="export")
    export_app.command("gguf")(export_gguf)
    app.command()(run)


def release(
    run_dir: Annotated[Optional[Path], typer.Argument(help="Run directory to release.")] = None,
    recipe: Annotated[
        Optional[Path], typer.Option(help="Recipe with a [release] section (default: the run's).")
    ] = None,
    push: Annotated[Optional[str], typer.Option(help="Upload the release to this Hub repo id.")] = None,
    verify: Annotated[
        Optional[Path], typer.Option(help="Only check a release folder against its provenance.json.")
    ] = None,
    set: SetOpt = None,
):
    """Turn a run into a release: HF folder, model card, data card, MOF class, provenance, licences."""
    from lmforge.pipeline import expand_run_dir
    from lmforge.release import build_release, push_release, verify_release

    if verify:
        v = verify_release(verify)
        console.print(f"verified: {v['files']} files match {verify / 'provenance.json'}")
        return
    if run_dir is None:
        raise LmforgeError("release: give a run directory (or --verify RELEASE_DIR)")
    saved = run_dir / "recipe.yaml"  # the recipe the run was made with, unless another is given
    r = expand_run_dir(load(recipe or (saved if saved.is_file() else None), {}, set), run_dir)
    s = build_release(r.release, run_dir)
    print_release(s)
    if push:
        console.print(f"pushed: {push_release(s['release'], push)}")


def export_gguf(
    model: Annotated[str, typer.Argument(help="Run directory, HF folder, .gguf or Hub id.")],
    type: Annotated[
        Optional[list[str]],
        typer.Option("--type", "-t", help="f32, f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m, q6_k (repeatable)."),
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output file (one type) or folder.")] = None,
    verify_prompt: Annotated[
        Optional[list[str]],
        typer.Option("--verify-prompt", help="Check greedy decoding in llama.cpp on this prompt (repeatable)."),
    ] = None,
):
    """Write GGUF files for llama.cpp, Ollama and LM Studio; optionally verified in llama.cpp.
    Given a run, the files go next to its release (listed in its provenance) or into <run>/export."""
    from lmforge.export import export_gguf as write_gguf
    from lmforge.export import verify_gguf
    from lmforge.models import is_run_dir
    from lmforge.recipe import ExportConfig

    kinds = list(type or ["f16"])
    if is_run_dir(model):
        from lmforge.export.stage import run_export_stage

        cfg = ExportConfig(types=kinds, out=str(out) if out else None, verify_prompts=list(verify_prompt or []))
        files = run_export_stage(cfg, Path(model))["files"]
    else:
        files = []
        for kind in kinds:
            path = (
                out
                if out and out.suffix == ".gguf" and len(kinds) == 1
                else (out or Path.cwd()) / f"{Path(model).stem or 'model'}-{kind}.gguf"
            )
            info = write_gguf(model, path, kind)
            if verify_prompt:
                info["llama_cpp"] = verify_gguf(path, model, list(verify_prompt))
            files.append(info)
    print_exports(files)


def run(recipe: Annotated[Path, typer.Argument(help="Recipe file.")], run_dir: RunDirOpt = None, set: SetOpt = None):
    """Run every stage of a recipe in order in one run directory."""
    from lmforge.pipeline import run_dir_for, run_stage, save_resolved_recipe

    r = load(recipe, {}, set)
    rd = run_dir_for(r, run_dir)
    rd.mkdir(parents=True, exist_ok=True)
    save_resolved_recipe(r, rd)
    for stage in r.run.stages:
        console.rule(f"[bold]{stage}")
        s = run_stage(stage, r, rd)
        if s.get("interrupted"):
            console.print(f"stopped during {stage}; rerun the same command to resume")
            raise typer.Exit(143)
        if "launched" in s:  # under torchrun: its rank 0 printed the stage's results
            continue
        if stage == "curate":
            print_curate(s)
        if stage == "generate":
            for sample in s["samples"]:
                console.print(f"[bold]{sample['prompt']}[/bold]{sample['completion']}", highlight=False)
        if stage == "sft":
            print_samples(s["samples"])
        if stage == "release":
            print_release(s)
        if stage == "export":
            print_exports(s["files"])
    console.print(f"\nrun directory: {rd.resolve()}\nreport:        {(rd / 'report.md').resolve()}")
    if "sft" in r.run.stages:
        console.print(
            f"chat with it:  lmforge chat {rd}\nserve it:      lmforge serve {rd}   "
            "then open http://127.0.0.1:8000/ (OpenAI API at /v1)"
        )
    if "release" in r.run.stages:
        console.print(
            f"release:       {(rd / 'release').resolve()}   (check it: lmforge release --verify {rd / 'release'})"
        )


def print_release(s: dict) -> None:
    console.print(f"release: {s['release']} ({s['params'] / 1e6:.2f}M parameters, {s['checkpoints']} checkpoints)")
    console.print(f"MOF: {s['mof_class']}")
    for cls, gaps in s["missing_for_next_class"].items():
        console.print(f"  missing for {cls}: " + "; ".join(gaps), highlight=False)


def print_exports(files: list[dict]) -> None:
    for f in files:
        line = f"{f['path']}: {f['type']}, {f['bytes'] / 1e6:.1f} MB"
        if f.get("llama_cpp"):
            v = f["llama_cpp"]
            line += (
                f"; llama.cpp greedy identical {v['greedy_identical']}/{v['prompts']}, top-1 agreement "
                f"{v['top1_agreement']:.1%}, tokenization identical {v['tokenization_identical']}/{v['prompts']}"
            )
        console.print(line, highlight=False)
