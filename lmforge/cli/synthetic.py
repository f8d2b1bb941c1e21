"""Verbs that make instruction data through an OpenAI-compatible endpoint: `translate`, `self-instruct`,
`reverse-instruct`."""

from typing import Annotated, Optional

import typer

from lmforge.cli.common import (
    EndpointModelOpt,
    EndpointOpt,
    RecipeArg,
    RunDirOpt,
    SetOpt,
    console,
    endpoint_values,
    flags,
    stage,
)

ConcurrencyOpt = Annotated[Optional[int], typer.Option(help="Requests in flight.")]


def register(app: typer.Typer) -> None:
    app.command()(translate)
    app.command("self-instruct")(self_instruct)
    app.command("reverse-instruct")(reverse_instruct)


def translate(
    recipe: RecipeArg = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Instruction file or task spec.")] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Target language code.")] = None,
    source: Annotated[Optional[str], typer.Option("--from", help="Source language code.")] = None,
    endpoint: EndpointOpt = None,
    model: EndpointModelOpt = None,
    concurrency: ConcurrencyOpt = None,
    keep_both: Annotated[bool, typer.Option("--keep-both", help="Also keep the original records.")] = False,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Translate instruction sets and multiple-choice tasks through an OpenAI-compatible endpoint."""
    values = flags(
        inputs=input,
        target_language=to,
        source_language=source,
        keep_both=True if keep_both else None,
        endpoint=endpoint_values(endpoint, model, concurrency),
    )
    s = stage("translate", recipe, run_dir, {"translate": values}, set)
    for f in s["files"]:
        reasons = ", ".join(f"{k} {v}" for k, v in f["reasons"].items())
        console.print(
            f"{f['input']} -> {f['output']}: {f['read']} read, {f['translated']} translated, "
            f"{f['rejected']} rejected" + (f" ({reasons})" if reasons else ""),
            highlight=False,
        )
    e = s["endpoint"]
    console.print(
        f"endpoint: {e['requests']} requests, {e['answered_from_cache']} from cache, {e['retries']} retries; "
        f"rejects: {s['rejects']}"
    )


def self_instruct(
    recipe: RecipeArg = None,
    seeds: Annotated[Optional[str], typer.Option(help="Seed tasks (Self-Instruct layout).")] = None,
    language: Annotated[Optional[str], typer.Option(help="Language of the tasks.")] = None,
    target: Annotated[Optional[int], typer.Option(help="Instructions to keep.")] = None,
    endpoint: EndpointOpt = None,
    model: EndpointModelOpt = None,
    concurrency: ConcurrencyOpt = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Grow an instruction set from seed tasks (Self-Instruct) through an OpenAI-compatible endpoint."""
    values = flags(
        seeds=seeds, language=language, target=target, endpoint=endpoint_values(endpoint, model, concurrency)
    )
    s = stage("self_instruct", recipe, run_dir, {"self_instruct": values}, set)
    console.print(
        f"self-instruct: {s['generated']} generated, {s['kept_instructions']} kept, "
        f"{s['instances_kept']} with an instance -> {s['output']}"
    )
    print_dropped(s["dropped"])


def reverse_instruct(
    recipe: RecipeArg = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Documents: file or folder.")] = None,
    language: Annotated[
        Optional[list[str]], typer.Option("--language", "-l", help="Keep documents in this language (repeat).")
    ] = None,
    limit: Annotated[Optional[int], typer.Option(help="Documents to sample and ask about.")] = None,
    endpoint: EndpointOpt = None,
    model: EndpointModelOpt = None,
    concurrency: ConcurrencyOpt = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Instructions for existing documents (LongForm): an endpoint writes the request each one answers."""
    values = flags(
        inputs=input, languages=language, limit=limit, endpoint=endpoint_values(endpoint, model, concurrency)
    )
    s = stage("reverse_instruct", recipe, run_dir, {"reverse_instruct": values}, set)
    console.print(f"reverse-instruct: {s['sampled']} documents asked about, {s['kept']} pairs kept -> {s['output']}")
    print_dropped(s["dropped"])


def print_dropped(dropped: dict[str, int]) -> None:
    for reason, n in dropped.items():
        console.print(f"  dropped, {reason}: {n}", highlight=False)
