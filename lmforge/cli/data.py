"""Data verbs: `curate`, `tokenizer train`, `tokenize`."""

from typing import Annotated, Optional

import typer

from lmforge.cli.common import RecipeArg, RunDirOpt, SetOpt, console, flags, load, stage

tokenizer_app = typer.Typer(help="Train and inspect tokenizers.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(curate)
    app.add_typer(tokenizer_app, name="tokenizer")
    tokenizer_app.command("train")(tokenizer_train)
    app.command()(tokenize)


def curate(
    recipe: RecipeArg = None,
    input: Annotated[
        Optional[list[str]], typer.Option("--input", "-i", help="Raw documents: files, folders, globs, hf:DATASET.")
    ] = None,
    language: Annotated[Optional[list[str]], typer.Option("--language", "-l", help="Languages to keep.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes.")] = None,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Only account and report a finished run (after a Slurm submission).")
    ] = False,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Clean raw text: language ID, quality filters, PII redaction, dedup; every document accounted for."""
    from lmforge.curate import run_curate_stage
    from lmforge.pipeline import expand_run_dir, run_dir_for

    r = load(recipe, {"curate": flags(inputs=input, languages=language, workers=workers)}, set)
    rd = run_dir_for(r, run_dir)  # called directly (not via run_stage) for --report-only
    s = run_curate_stage(expand_run_dir(r, rd).curate, rd, report_only=report_only)
    if "submitted" in s:
        console.print(f"curate: submitted to {s['submitted']}; logs in {s['logs']}; {s['next']}")
        return
    print_curate(s)


def print_curate(s: dict) -> None:
    console.print(
        f"curate: {s['read']:,} read = {s['kept']:,} kept + {sum(s['dropped'].values()):,} dropped -> {s['data']}"
    )
    for reason, n in s["dropped"].items():
        console.print(f"  {reason}: {n:,}")


def tokenizer_train(
    recipe: RecipeArg = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Training text files/folders.")] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help="Vocabulary size.")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Train a byte-level BPE tokenizer and save it as a Hugging Face tokenizer."""
    s = stage("tokenizer", recipe, run_dir, {"tokenizer": flags(inputs=input, vocab_size=vocab_size)}, set)
    console.print(f"tokenizer: {s['vocab_size']} tokens -> {s['out']}")
    for lang, f in s["fertility"].items():
        console.print(f"  {lang}: {f['tokens_per_word']:.3f} tokens/word")


def tokenize(
    recipe: RecipeArg = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Training documents.")] = None,
    val: Annotated[Optional[list[str]], typer.Option(help="Validation documents.")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer folder (default: <run>/tokenizer).")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Turn JSONL/Parquet/text documents into packed token shards."""
    s = stage("tokenize", recipe, run_dir, {"tokenize": flags(train=input, val=val, tokenizer=tokenizer)}, set)
    for split, m in s.items():
        console.print(f"tokenize: {split}: {m['docs']} documents, {m['tokens']:,} tokens -> {m['path']}")
