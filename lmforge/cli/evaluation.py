"""Evaluation verbs: `eval`, `generate`, `judge`."""

from pathlib import Path
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
    lang_files,
    load,
    stage,
)
from lmforge.errors import LmforgeError


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)
    app.command()(generate)
    app.command()(judge)
    app.command()(decontaminate)


def eval_(
    model: Annotated[
        Optional[str], typer.Argument(help="Model: HF folder, run, adapter, .gguf file or Hub id.")
    ] = None,
    task: Annotated[Optional[list[str]], typer.Option("--task", "-t", help="Task spec (.toml/.yaml).")] = None,
    bpb: Annotated[Optional[list[str]], typer.Option(help="LANG=FILE of held-out text, e.g. de=heldout.jsonl.")] = None,
    harness: Annotated[Optional[str], typer.Option(help="Score with 'lm-eval' (lm-evaluation-harness).")] = None,
    tasks: Annotated[Optional[str], typer.Option(help="lm-eval registered tasks, comma-separated.")] = None,
    num_fewshot: Annotated[Optional[int], typer.Option(help="Few-shot examples per item.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="First N items of each task.")] = None,
    baseline: Annotated[
        Optional[str], typer.Option(help="Compare with this model (any form the model argument takes).")
    ] = None,
    target_language: Annotated[Optional[str], typer.Option(help="Deltas in it read as gain.")] = None,
    source_language: Annotated[Optional[str], typer.Option(help="Deltas in it read as forgetting.")] = None,
    sweep: Annotated[bool, typer.Option("--sweep", help="Also evaluate every checkpoint of the run.")] = False,
    exclude_contaminated: Annotated[
        bool, typer.Option("--exclude-contaminated", help="Also score without items `decontaminate` found.")
    ] = False,
    recipe: Annotated[Optional[Path], typer.Option(help="Recipe whose [eval] section to use.")] = None,
    endpoint: EndpointOpt = None,
    endpoint_model: EndpointModelOpt = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Tasks by language side by side, bits per byte, baseline comparison, checkpoint sweep.
    With --endpoint, tasks are scored through a served model instead (MODEL, if given, names it for
    its tokenizer, which multiple-choice tasks need)."""
    from lmforge.models import is_run_dir

    harness_tasks = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    values = flags(
        model=model,
        harness=harness,
        baseline=baseline,
        target_language=target_language,
        source_language=source_language,
        num_fewshot=num_fewshot,
        limit=limit,
        tasks=task,
        harness_tasks=harness_tasks,
        sweep=True if sweep else None,
        exclude_contaminated=True if exclude_contaminated else None,
        bpb_texts=lang_files("--bpb", bpb),
        endpoint=endpoint_values(endpoint, endpoint_model) if endpoint else None,
    )
    if run_dir is None and model:
        run_dir = Path(model) if is_run_dir(model) else Path(model) / "eval"
    s = stage("eval", recipe, run_dir, {"eval": values}, set)
    for lang, score in s["bits_per_byte"].items():
        console.print(f"{lang}: {score:.4f} bits/byte")
    for name, metrics in s["tasks"].items():
        console.print(f"{name}: " + ", ".join(f"{m} {v:.3f}" for m, v in metrics.items()))
    for lang, value in s.get("aggregate", {}).items():
        console.print(f"aggregate {lang}: {value:.3f} (centred accuracy: chance 0, perfect 1)")
    for row in s.get("comparison", []):
        console.print(
            f"{row['name']} [{row['language']}] {row['metric']}: {row['baseline']:.3f} -> "
            f"{row['model']:.3f} ({row['reading']}, p={row['p_value']:.3f})"
        )
    console.print(f"results: {s['results']}")


def generate(
    model: Annotated[
        Optional[str], typer.Argument(help="Model: HF folder, run, adapter, .gguf file or Hub id.")
    ] = None,
    prompt: Annotated[Optional[list[str]], typer.Option("--prompt", "-p")] = None,
    recipe: Annotated[Optional[Path], typer.Option(help="Recipe whose [generate] section to use.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option()] = None,
    temperature: Annotated[Optional[float], typer.Option()] = None,
    top_k: Annotated[Optional[int], typer.Option()] = None,
    top_p: Annotated[Optional[float], typer.Option()] = None,
    seed: Annotated[Optional[int], typer.Option()] = None,
    set: SetOpt = None,
):
    """Sample text from a model (prints it; `generate` as a recipe stage also writes the run's report)."""
    from lmforge.generate import generate_texts
    from lmforge.models import load_model_and_tokenizer

    values = flags(
        checkpoint=model,
        prompts=prompt,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
    )
    cfg = load(recipe, {"generate": values}, set).generate
    if not cfg.checkpoint:
        raise LmforgeError("generate: give a model folder or run directory")
    m, tok = load_model_and_tokenizer(cfg.checkpoint)
    texts = generate_texts(m, tok, cfg.prompts, cfg.max_new_tokens, cfg.temperature, cfg.top_k, cfg.top_p, cfg.seed)
    for p, text in zip(cfg.prompts, texts):
        console.print(f"[bold]{p}[/bold]{text}", highlight=False, markup=True)


def judge(
    recipe: RecipeArg = None,
    model: Annotated[
        Optional[str], typer.Option("--model", help="Model answering: folder, run, .gguf, Hub id.")
    ] = None,
    judge_endpoint: Annotated[Optional[str], typer.Option(help="Judge's OpenAI-compatible base URL.")] = None,
    judge_model: Annotated[
        Optional[str],
        typer.Option(help="Judge's model name at that endpoint (default: its only model, when it serves one)."),
    ] = None,
    mode: Annotated[Optional[str], typer.Option(help="single, pairwise or both.")] = None,
    questions: Annotated[
        Optional[list[str]], typer.Option("--questions", help="LANG=question.jsonl (repeatable).")
    ] = None,
    baseline_answers: Annotated[
        Optional[list[str]], typer.Option("--baseline-answers", help="LANG=answers.jsonl of the baseline.")
    ] = None,
    baseline_model: Annotated[Optional[str], typer.Option(help="Or answer with this model first (pairwise).")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Grade a chat model MT-Bench-style with an LLM judge, English and German side by side."""
    from lmforge.judge import score_table
    from lmforge.models import is_run_dir

    values = flags(
        model=model,
        mode=mode,
        judge=endpoint_values(judge_endpoint, judge_model),
        baseline_model=baseline_model,
        questions=lang_files("--questions", questions),
        baseline_answers=lang_files("--baseline-answers", baseline_answers),
    )
    if run_dir is None and model and is_run_dir(model):  # judging a run: the judgments join it
        run_dir = Path(model)
    s = stage("judge", recipe, run_dir, {"judge": values}, set)
    for line in score_table(s):
        console.print(line, highlight=False)
    for lang, r in s["languages"].items():
        if "pairwise" in r and r["pairwise"].get("pairs"):
            p = r["pairwise"]
            console.print(
                f"{lang}: adjusted win rate vs {p['baseline']} {p['adjusted_win_rate']:.1%} "
                f"(CI {p['adjusted_win_rate_ci95'][0]:.1%}-{p['adjusted_win_rate_ci95'][1]:.1%}), "
                f"position bias {p['position_bias_rate']:.1%}"
            )


def decontaminate(
    run_dir: Annotated[Path, typer.Argument(help="The run whose training data to check.")],
    task: Annotated[
        Optional[list[str]], typer.Option("--task", "-t", help="Task spec (default: the run's eval tasks).")
    ] = None,
    ngram: Annotated[Optional[int], typer.Option(help="Words per n-gram (default 13).")] = None,
    recipe: Annotated[Optional[Path], typer.Option(help="Recipe whose [decontaminate] section to use.")] = None,
    set: SetOpt = None,
):
    """Which evaluation items (tasks, judge questions) the run's training data contains."""
    s = stage("decontaminate", recipe, run_dir, {"decontaminate": flags(tasks=task, ngram=ngram)}, set)
    for name, t in s["tasks"].items():
        where = ", ".join(f"{src} {n}" for src, n in t["by_source"].items())
        console.print(
            f"{name}: {t['contaminated']} of {t['items']} items contaminated" + (f" ({where})" if where else "")
        )
    console.print(f"items: {s['output']}")
