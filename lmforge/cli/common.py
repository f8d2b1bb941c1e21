"""What every verb shares: the console, the common options, and how flag values reach a stage.

Flag values travel as typed data: `flags(...)` builds the nested dict that `load_recipe` merges
into the recipe before validation (a path with a backslash or a quote arrives as it was typed);
`--set section.key=value` stays for the user, read as TOML.
"""

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from lmforge.errors import LmforgeError

console = Console(soft_wrap=True)  # paths must stay on one line to be copy-pasted

RecipeArg = Annotated[Optional[Path], typer.Argument(help="Recipe file (.toml/.yaml); defaults apply without one.")]
RunDirOpt = Annotated[Optional[Path], typer.Option("--run-dir", help="Run directory (default: run.out_dir/run.name).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a recipe value: section.key=value.")]
ModelArg = Annotated[str, typer.Argument(help="Model: HF folder, run, adapter, .gguf file or Hub id.")]
EndpointOpt = Annotated[
    Optional[str],
    typer.Option("--endpoint", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (lmforge serve)."),
]
EndpointModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--model", help="Model name at the endpoint (default: the endpoint's only model, when it serves one)."
    ),
]


def flags(**values: Any) -> dict[str, Any]:
    """The given flag values, without those left unset (None), nested dicts pruned likewise."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = flags(**value)
            if not value:
                continue
        if value is not None:
            out[key] = value
    return out


def lang_files(option: str, items: list[str] | None) -> dict[str, str] | None:
    """`LANG=FILE` flag values (`--bpb de=heldout.jsonl`) as {lang: file}; one line for a bad one."""
    if not items:
        return None
    out = {}
    for item in items:
        lang, sep, path = item.partition("=")
        if not sep or not lang.strip() or not path.strip():
            raise LmforgeError(f"{option} {item!r}: expected LANG=FILE, e.g. {option} de=file.jsonl")
        out[lang.strip()] = path.strip()
    return out


def endpoint_values(endpoint: str | None, model: str | None, concurrency: int | None = None) -> dict[str, Any]:
    return flags(base_url=endpoint, model=model, concurrency=concurrency)


def load(recipe: Path | None, values: dict, overrides: list[str] | None):
    from lmforge.recipe import load_recipe

    return load_recipe(recipe, list(overrides or []), values)


def stage(name: str, recipe: Path | None, run_dir: Path | None, values: dict, overrides: list[str] | None) -> dict:
    """Run one stage with the recipe, the flag values and the `--set` overrides."""
    from lmforge.pipeline import run_dir_for, run_stage

    r = load(recipe, values, overrides)
    return run_stage(name, r, run_dir_for(r, run_dir))


def print_samples(samples: list[dict]) -> None:
    for x in samples:
        console.print(f"[bold]user:[/bold] {x['prompt']}\n[bold]assistant:[/bold] {x['reply']}", highlight=False)
