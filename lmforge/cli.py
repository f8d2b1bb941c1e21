"""The `lmforge` command line: one verb per stage, each a thin wrapper over the stage's entry point."""

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from lmforge.errors import LmforgeError

app = typer.Typer(help="Build fully open, language-adapted small language models end to end.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
tokenizer_app = typer.Typer(help="Train and inspect tokenizers.", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")
export_app = typer.Typer(help="Export a model to another runtime's format.", no_args_is_help=True)
app.add_typer(export_app, name="export")
console = Console(soft_wrap=True)  # paths must stay on one line to be copy-pasted

RecipeArg = Annotated[Optional[Path], typer.Argument(help="Recipe file (.toml/.yaml); defaults apply without one.")]
RunDirOpt = Annotated[Optional[Path], typer.Option("--run-dir", help="Run directory (default: run.out_dir/run.name).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a recipe value: section.key=value.")]


def _cli_args(recipe: Path | None, run_dir: Path, overrides: list[str]) -> list[str]:
    args = [str(recipe)] if recipe else []
    args += ["--run-dir", str(run_dir)]
    for o in overrides:
        args += ["--set", o]
    return args


def _stage(stage: str, recipe: Path | None, run_dir: Path | None, overrides: list[str]) -> dict:
    from lmforge.pipeline import run_dir_for, run_stage
    from lmforge.recipe import load_recipe

    r = load_recipe(recipe, overrides)
    rd = run_dir_for(r, run_dir)
    return run_stage(stage, r, rd, _cli_args(recipe, rd, overrides))


@tokenizer_app.command("train")
def tokenizer_train(
    recipe: RecipeArg = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Training text files/folders.")] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help="Vocabulary size.")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Train a byte-level BPE tokenizer and save it as a Hugging Face tokenizer."""
    overrides = list(set or [])
    if input:
        overrides.append(f"tokenizer.inputs={_toml_list(input)}")
    if vocab_size:
        overrides.append(f"tokenizer.vocab_size={vocab_size}")
    s = _stage("tokenizer", recipe, run_dir, overrides)
    console.print(f"tokenizer: {s['vocab_size']} tokens -> {s['out']}")
    for lang, f in s["fertility"].items():
        console.print(f"  {lang}: {f['tokens_per_word']:.3f} tokens/word")


@app.command()
def curate(
    recipe: RecipeArg = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Raw documents: files, folders, "
                                                       "globs, hf:DATASET.")] = None,
    language: Annotated[Optional[list[str]], typer.Option("--language", "-l", help="Languages to keep.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes.")] = None,
    report_only: Annotated[bool, typer.Option("--report-only", help="Only account and report a finished run "
                                              "(after a Slurm submission).")] = False,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Clean raw text: language ID, quality filters, PII redaction, dedup; every document accounted for."""
    from lmforge.curate import run_curate_stage
    from lmforge.pipeline import expand_run_dir, run_dir_for
    from lmforge.recipe import load_recipe

    overrides = list(set or [])
    if input:
        overrides.append(f"curate.inputs={_toml_list(input)}")
    if language:
        overrides.append(f"curate.languages={_toml_list(language)}")
    if workers:
        overrides.append(f"curate.workers={workers}")
    r = load_recipe(recipe, overrides)
    rd = run_dir_for(r, run_dir)  # called directly (not via run_stage) for --report-only
    s = run_curate_stage(expand_run_dir(r, rd).curate, rd, report_only=report_only)
    if "submitted" in s:
        console.print(f"curate: submitted to {s['submitted']}; logs in {s['logs']}; {s['next']}")
        return
    _print_curate(s)


def _print_curate(s: dict) -> None:
    console.print(f"curate: {s['read']:,} read = {s['kept']:,} kept + {sum(s['dropped'].values()):,} dropped "
                  f"-> {s['data']}")
    for reason, n in s["dropped"].items():
        console.print(f"  {reason}: {n:,}")


@app.command()
def tokenize(
    recipe: RecipeArg = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Training documents.")] = None,
    val: Annotated[Optional[list[str]], typer.Option(help="Validation documents.")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer folder (default: <run>/tokenizer).")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Turn JSONL/Parquet/text documents into packed token shards."""
    overrides = list(set or [])
    if input:
        overrides.append(f"tokenize.train={_toml_list(input)}")
    if val:
        overrides.append(f"tokenize.val={_toml_list(val)}")
    if tokenizer:
        overrides.append(f"tokenize.tokenizer={json.dumps(tokenizer)}")
    s = _stage("tokenize", recipe, run_dir, overrides)
    for split, m in s.items():
        console.print(f"tokenize: {split}: {m['docs']} documents, {m['tokens']:,} tokens -> {m['path']}")


@app.command()
def pretrain(recipe: RecipeArg = None, run_dir: RunDirOpt = None, set: SetOpt = None):
    """Pretrain a Llama/Mistral-family model from scratch (resumes from the run's latest checkpoint)."""
    s = _stage("pretrain", recipe, run_dir, list(set or []))
    if s.get("interrupted"):
        raise typer.Exit(143)
    if "steps" in s:
        console.print(f"pretrain: {s['steps']} steps, final loss {s['final_loss']:.4f} -> {s['checkpoint']}")


@app.command()
def adapt(
    recipe: RecipeArg = None,
    base: Annotated[Optional[str], typer.Option(help="Model to adapt: HF folder, run, .gguf file or Hub id.")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Continued pretraining on a new language: mixes with replay, phases, tokenizer extension, RoPE scaling."""
    overrides = list(set or [])
    if base:
        overrides.append(f"adapt.base={json.dumps(base)}")
    s = _stage("adapt", recipe, run_dir, overrides)
    if s.get("interrupted"):
        raise typer.Exit(143)
    for lang, after in s["after"]["bits_per_byte"].items():
        before = s["before"]["bits_per_byte"][lang]
        console.print(f"{lang}: {before:.4f} -> {after:.4f} bits/byte ({(after - before) / before:+.1%})")
    console.print(f"adapted model: {s['model']}")


@app.command("eval")
def eval_(
    model: Annotated[Optional[str], typer.Argument(help="Model: HF folder, run, adapter, .gguf file or Hub id.")] = None,
    task: Annotated[Optional[list[str]], typer.Option("--task", "-t", help="Task spec (.toml/.yaml).")] = None,
    bpb: Annotated[Optional[list[str]], typer.Option(help="LANG=FILE of held-out text, e.g. de=heldout.jsonl.")] = None,
    harness: Annotated[Optional[str], typer.Option(help="Score with 'lm-eval' (lm-evaluation-harness).")] = None,
    tasks: Annotated[Optional[str], typer.Option(help="lm-eval registered tasks, comma-separated.")] = None,
    num_fewshot: Annotated[Optional[int], typer.Option(help="Few-shot examples per item.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="First N items of each task.")] = None,
    baseline: Annotated[Optional[str], typer.Option(help="Compare with this model (any form the model argument takes).")] = None,
    target_language: Annotated[Optional[str], typer.Option(help="Deltas in it read as gain.")] = None,
    source_language: Annotated[Optional[str], typer.Option(help="Deltas in it read as forgetting.")] = None,
    sweep: Annotated[bool, typer.Option("--sweep", help="Also evaluate every checkpoint of the run.")] = False,
    recipe: Annotated[Optional[Path], typer.Option(help="Recipe whose [eval] section to use.")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Tasks by language side by side, bits per byte, baseline comparison, checkpoint sweep."""
    overrides = list(set or [])
    for key, value in (("model", model), ("harness", harness), ("baseline", baseline),
                       ("target_language", target_language), ("source_language", source_language)):
        if value is not None:
            overrides.append(f"eval.{key}={json.dumps(value)}")
    for key, value in (("num_fewshot", num_fewshot), ("limit", limit)):
        if value is not None:
            overrides.append(f"eval.{key}={value}")
    if task:
        overrides.append(f"eval.tasks={_toml_list(task)}")
    if tasks:
        overrides.append(f"eval.harness_tasks={_toml_list([t.strip() for t in tasks.split(',') if t.strip()])}")
    if sweep:
        overrides.append("eval.sweep=true")
    for item in bpb or []:
        lang, sep, path = item.partition("=")
        if not sep:
            raise LmforgeError(f"--bpb {item!r}: expected LANG=FILE")
        overrides.append(f"eval.bpb_texts.{lang}={json.dumps(path)}")
    if run_dir is None and model:
        from lmforge.models import is_run_dir

        run_dir = Path(model) if is_run_dir(model) else Path(model) / "eval"
    s = _stage("eval", recipe, run_dir, overrides)
    for lang, score in s["bits_per_byte"].items():
        console.print(f"{lang}: {score:.4f} bits/byte")
    for name, metrics in s["tasks"].items():
        console.print(f"{name}: " + ", ".join(f"{m} {v:.3f}" for m, v in metrics.items()))
    for row in s.get("comparison", []):
        console.print(f"{row['name']} [{row['language']}] {row['metric']}: {row['baseline']:.3f} -> "
                      f"{row['model']:.3f} ({row['reading']}, p={row['p_value']:.3f})")
    console.print(f"results: {s['results']}")


@app.command()
def generate(
    model: Annotated[Optional[str], typer.Argument(help="Model: HF folder, run, adapter, .gguf file or Hub id.")] = None,
    prompt: Annotated[Optional[list[str]], typer.Option("--prompt", "-p")] = None,
    recipe: Annotated[Optional[Path], typer.Option(help="Recipe whose [generate] section to use.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option()] = None,
    temperature: Annotated[Optional[float], typer.Option()] = None,
    top_k: Annotated[Optional[int], typer.Option()] = None,
    top_p: Annotated[Optional[float], typer.Option()] = None,
    seed: Annotated[Optional[int], typer.Option()] = None,
    set: SetOpt = None,
):
    """Sample text from a checkpoint."""
    from lmforge.generate import generate_texts
    from lmforge.models import load_model_and_tokenizer
    from lmforge.recipe import load_recipe

    overrides = list(set or [])
    for key, value in (("max_new_tokens", max_new_tokens), ("temperature", temperature), ("top_k", top_k),
                       ("top_p", top_p), ("seed", seed)):
        if value is not None:
            overrides.append(f"generate.{key}={value}")
    cfg = load_recipe(recipe, overrides).generate
    source = model or cfg.checkpoint
    if not source:
        raise LmforgeError("generate: give a model folder or run directory")
    m, tok = load_model_and_tokenizer(source)
    for p, text in zip(prompt or cfg.prompts, generate_texts(m, tok, prompt or cfg.prompts, cfg.max_new_tokens,
                                                             cfg.temperature, cfg.top_k, cfg.top_p, cfg.seed)):
        console.print(f"[bold]{p}[/bold]{text}", highlight=False, markup=True)


@app.command()
def sft(recipe: RecipeArg = None, run_dir: RunDirOpt = None, set: SetOpt = None):
    """Instruction-tune the run's model (full, LoRA or LLaMA-Adapter) into a chat model."""
    s = _stage("sft", recipe, run_dir, list(set or []))
    for lang, before in s["heldout_loss_before"].items():
        console.print(f"{lang}: held-out loss {before:.4f} -> {s['heldout_loss_after'][lang]:.4f}")
    _print_samples(s["samples"])
    console.print(f"chat model: {s['model']}")


def _print_samples(samples: list[dict]) -> None:
    for x in samples:
        console.print(f"[bold]user:[/bold] {x['prompt']}\n[bold]assistant:[/bold] {x['reply']}", highlight=False)


@app.command()
def chat(
    model: Annotated[str, typer.Argument(help="Model: HF folder, run, adapter, .gguf file or Hub id.")],
    prompt: Annotated[Optional[str], typer.Option("--prompt", "-p", help="Answer this once and exit.")] = None,
    system: Annotated[Optional[str], typer.Option(help="System prompt.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "--max-tokens")] = 128,
    temperature: Annotated[float, typer.Option(help="0 = greedy.")] = 0.7,
    top_k: Annotated[int, typer.Option()] = 50,
    top_p: Annotated[float, typer.Option()] = 0.95,
    seed: Annotated[int, typer.Option()] = 0,
    guardrails: Annotated[Optional[Path], typer.Option(help="Topical rails file: refused messages never reach the model.")] = None,
):
    """Talk to a model: streaming replies, history, /reset, /exit. Non-interactive with --prompt or piped stdin."""
    from lmforge.chat import make_engine
    from lmforge.chat.terminal import answer_once, interactive
    from lmforge.engine import SamplingParams
    from lmforge.models import load_model_and_tokenizer

    sampling = SamplingParams(max_new_tokens, temperature, top_k, top_p, seed)  # checked before the model loads
    rails = None
    if guardrails:
        from lmforge.guardrails import load_rails

        rails = load_rails(guardrails)
    engine = make_engine(*load_model_and_tokenizer(model))
    if prompt is None and not sys.stdin.isatty():
        prompt = sys.stdin.read().strip()
    if prompt is not None:
        answer_once(engine, prompt, system, sampling, rails)
    else:
        interactive(engine, system, sampling, rails)


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="Model: HF folder, run, adapter, .gguf file or Hub id.")],
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    backend: Annotated[str, typer.Option(help="torch (lmforge's decode engine) or llama.cpp (GGUF files).")] = "torch",
    api_key: Annotated[Optional[str], typer.Option(help="Require 'Authorization: Bearer KEY' on /v1/* "
                                                   "(default: $LMFORGE_API_KEY).")] = None,
    guardrails: Annotated[Optional[Path], typer.Option(help="Topical rails file (.toml/.yaml).")] = None,
    max_batch: Annotated[int, typer.Option(help="Requests decoded together.")] = 8,
    max_waiting: Annotated[int, typer.Option(help="Queued requests beyond the batch; more get 429.")] = 64,
    dtype: Annotated[str, typer.Option(help="torch backend weights: auto (bf16 where the chip has bf16 math), "
                                            "fp32 or bf16.")] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="CPU threads.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Model name clients use (default: the folder/file name).")] = None,
    grace_period: Annotated[float, typer.Option(help="Seconds a SIGTERM/SIGINT waits for connections to close "
                                                     "after ending every request.")] = 5.0,
):
    """Serve a model over the OpenAI API (chat and completions, streamed or not) with a web chat page at /."""
    from lmforge.serve.run import serve as run_server

    if dtype not in ("auto", "fp32", "bf16"):
        raise LmforgeError(f"--dtype {dtype!r}: choose auto, fp32 or bf16")
    if grace_period < 0:
        raise LmforgeError(f"--grace-period {grace_period}: must be 0 or more seconds")
    run_server(model, host, port, backend, api_key, str(guardrails) if guardrails else None, max_batch, max_waiting,
               dtype, threads, name, grace_period)


guardrails_app = typer.Typer(help="Topical guardrails.", no_args_is_help=True)
app.add_typer(guardrails_app, name="guardrails")


@guardrails_app.command("check")
def guardrails_check(
    rails: Annotated[Path, typer.Argument(help="Rails file (.toml/.yaml).")],
    labelled: Annotated[Path, typer.Option("--labelled", help="JSONL of {\"text\", \"topic\": NAME or null}.")],
):
    """Precision and recall per topic on labelled prompts, and the threshold that would balance them."""
    from lmforge.guardrails import check, load_rails, read_labelled

    r = load_rails(rails)
    texts, labels = read_labelled(labelled)
    res = check(r, texts, labels)
    console.print(f"{len(texts)} prompts, embedder {r.embedder_name}, mode {r.mode}")
    console.print("topic                 action  n   threshold  precision  recall   balanced at  (P / R)")
    for row in res["topics"]:
        console.print(f"{row['topic']:<21} {row['action']:<7} {row['support']:<3} {row['threshold']:>9.3f}  "
                      f"{row['precision']:>9.1%}  {row['recall']:>6.1%}   {row['balanced_threshold']:>10.3f}  "
                      f"({row['balanced_precision']:.1%} / {row['balanced_recall']:.1%})")
    console.print(f"refuse/pass accuracy {res['accuracy']:.1%}; macro precision {res['macro_precision']:.1%}, "
                  f"macro recall {res['macro_recall']:.1%}")


@app.command()
def plan(
    recipe: RecipeArg = None,
    params: Annotated[Optional[float], typer.Option(help="Model size in parameters, e.g. 125e6.")] = None,
    flops: Annotated[Optional[float], typer.Option(help="Compute budget in FLOPs, e.g. 1e20.")] = None,
    tokens: Annotated[Optional[float], typer.Option(help="Train on this many tokens instead of 20 per parameter.")] = None,
    gpu: Annotated[str, typer.Option(help="GPU model for the time estimate.")] = "H100-SXM",
    num_gpus: Annotated[int, typer.Option(help="Number of GPUs.")] = 1,
    mfu: Annotated[float, typer.Option(help="Model FLOPs utilisation to assume.")] = 0.4,
    set: SetOpt = None,
):
    """Chinchilla compute-optimal plan for a FLOP budget, a model size, or a recipe's model."""
    from lmforge.plan import plan_for_compute, plan_for_params
    from lmforge.plan.recipe_size import recipe_params
    from lmforge.recipe import load_recipe

    if flops is not None:
        p = plan_for_compute(flops, gpu, num_gpus, mfu)
    else:
        if params is None:
            if recipe is None:
                raise LmforgeError("plan: give --flops, --params or a recipe")
            params = recipe_params(load_recipe(recipe, list(set or [])))
        p = plan_for_params(params, gpu, num_gpus, mfu, tokens)
    console.print(f"parameters       {p.params / 1e6:,.1f}M")
    console.print(f"tokens           {p.tokens / 1e9:,.3f}B ({p.tokens / p.params:.1f} per parameter)")
    console.print(f"compute          {p.flops:.3e} FLOPs")
    console.print(f"predicted loss   {p.predicted_loss:.3f} nats/token (Chinchilla fit, MassiveText)")
    console.print(f"time             {p.hours:,.2f} h on {p.num_gpus}x {p.gpu} at {p.mfu:.0%} MFU")


@app.command()
def run(recipe: Annotated[Path, typer.Argument(help="Recipe file.")], run_dir: RunDirOpt = None, set: SetOpt = None):
    """Run every stage of a recipe in order in one run directory."""
    from lmforge.pipeline import run_dir_for, run_stage, save_resolved_recipe
    from lmforge.recipe import load_recipe

    overrides = list(set or [])
    r = load_recipe(recipe, overrides)
    rd = run_dir_for(r, run_dir)
    rd.mkdir(parents=True, exist_ok=True)
    save_resolved_recipe(r, rd)
    for stage in r.run.stages:
        console.rule(f"[bold]{stage}")
        s = run_stage(stage, r, rd, _cli_args(recipe, rd, overrides))
        if s.get("interrupted"):
            console.print(f"stopped during {stage}; rerun the same command to resume")
            raise typer.Exit(143)
        if stage == "curate":
            _print_curate(s)
        if stage == "generate":
            for sample in s["samples"]:
                console.print(f"[bold]{sample['prompt']}[/bold]{sample['completion']}", highlight=False)
        if stage == "sft":
            _print_samples(s["samples"])
        if stage == "release":
            _print_release(s)
        if stage == "export":
            _print_exports(s["files"])
    console.print(f"\nrun directory: {rd.resolve()}\nreport:        {(rd / 'report.md').resolve()}")
    if "sft" in r.run.stages:
        console.print(f"chat with it:  lmforge chat {rd}\nserve it:      lmforge serve {rd}   "
                      "then open http://127.0.0.1:8000/ (OpenAI API at /v1)")
    if "release" in r.run.stages:
        console.print(f"release:       {(rd / 'release').resolve()}   (check it: lmforge release --verify {rd / 'release'})")


EndpointOpt = Annotated[Optional[str], typer.Option("--endpoint", help="OpenAI-compatible base URL, e.g. "
                                                    "http://127.0.0.1:8000/v1 (lmforge serve).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="Model name at the endpoint.")]


def _endpoint_overrides(section: str, endpoint: str | None, model: str | None, concurrency: int | None) -> list[str]:
    out = [f'{section}.endpoint.base_url="{endpoint}"'] if endpoint else []
    out += [f'{section}.endpoint.model="{model}"'] if model else []
    out += [f"{section}.endpoint.concurrency={concurrency}"] if concurrency else []
    return out


@app.command()
def translate(
    recipe: RecipeArg = None,
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Instruction file or task spec.")] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Target language code.")] = None,
    source: Annotated[Optional[str], typer.Option("--from", help="Source language code.")] = None,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    concurrency: Annotated[Optional[int], typer.Option(help="Requests in flight.")] = None,
    keep_both: Annotated[bool, typer.Option("--keep-both", help="Also keep the original records.")] = False,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Translate instruction sets and multiple-choice tasks through an OpenAI-compatible endpoint."""
    overrides = list(set or []) + _endpoint_overrides("translate", endpoint, model, concurrency)
    if input:
        overrides.append(f"translate.inputs={_toml_list(input)}")
    if to:
        overrides.append(f'translate.target_language="{to}"')
    if source:
        overrides.append(f'translate.source_language="{source}"')
    if keep_both:
        overrides.append("translate.keep_both=true")
    s = _stage("translate", recipe, run_dir, overrides)
    for f in s["files"]:
        reasons = ", ".join(f"{k} {v}" for k, v in f["reasons"].items())
        console.print(f"{f['input']} -> {f['output']}: {f['read']} read, {f['translated']} translated, "
                      f"{f['rejected']} rejected" + (f" ({reasons})" if reasons else ""), highlight=False)
    e = s["endpoint"]
    console.print(f"endpoint: {e['requests']} requests, {e['answered_from_cache']} from cache, {e['retries']} retries; "
                  f"rejects: {s['rejects']}")


@app.command("self-instruct")
def self_instruct(
    recipe: RecipeArg = None,
    seeds: Annotated[Optional[str], typer.Option(help="Seed tasks (Self-Instruct layout).")] = None,
    language: Annotated[Optional[str], typer.Option(help="Language of the tasks.")] = None,
    target: Annotated[Optional[int], typer.Option(help="Instructions to keep.")] = None,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    concurrency: Annotated[Optional[int], typer.Option(help="Requests in flight.")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Grow an instruction set from seed tasks (Self-Instruct) through an OpenAI-compatible endpoint."""
    overrides = list(set or []) + _endpoint_overrides("self_instruct", endpoint, model, concurrency)
    for key, value in (("seeds", seeds), ("language", language)):
        if value:
            overrides.append(f'self_instruct.{key}="{value}"')
    if target:
        overrides.append(f"self_instruct.target={target}")
    s = _stage("self_instruct", recipe, run_dir, overrides)
    console.print(f"self-instruct: {s['generated']} generated, {s['kept_instructions']} kept, "
                  f"{s['instances_kept']} with an instance -> {s['output']}")
    for reason, n in s["dropped"].items():
        console.print(f"  dropped, {reason}: {n}", highlight=False)


@app.command()
def judge(
    recipe: RecipeArg = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Model answering: folder, run, .gguf, Hub id.")] = None,
    judge_endpoint: Annotated[Optional[str], typer.Option(help="Judge's OpenAI-compatible base URL.")] = None,
    judge_model: Annotated[Optional[str], typer.Option(help="Judge's model name at that endpoint.")] = None,
    mode: Annotated[Optional[str], typer.Option(help="single, pairwise or both.")] = None,
    questions: Annotated[Optional[list[str]], typer.Option("--questions", help="LANG=question.jsonl (repeatable).")] = None,
    baseline_answers: Annotated[Optional[list[str]], typer.Option("--baseline-answers",
                                                                  help="LANG=answers.jsonl of the baseline.")] = None,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Grade a chat model MT-Bench-style with an LLM judge, English and German side by side."""
    overrides = list(set or []) + _endpoint_overrides("judge.judge", judge_endpoint, judge_model, None)
    if model:
        overrides.append(f'judge.model="{model}"')
    if mode:
        overrides.append(f'judge.mode="{mode}"')
    for key, pairs in (("questions", questions), ("baseline_answers", baseline_answers)):
        if pairs:
            table = dict(p.split("=", 1) for p in pairs)
            overrides.append(f"judge.{key}=" + "{" + ", ".join(f'{k} = {json.dumps(v)}' for k, v in table.items()) + "}")
    s = _stage("judge", recipe, run_dir, overrides)
    from lmforge.judge.report import score_table

    for line in score_table(s):
        console.print(line, highlight=False)
    for lang, r in s["languages"].items():
        if "pairwise" in r and r["pairwise"].get("pairs"):
            p = r["pairwise"]
            console.print(f"{lang}: adjusted win rate vs {p['baseline']} {p['adjusted_win_rate']:.1%} "
                          f"(CI {p['adjusted_win_rate_ci95'][0]:.1%}-{p['adjusted_win_rate_ci95'][1]:.1%}), "
                          f"position bias {p['position_bias_rate']:.1%}")


@app.command()
def dpo(recipe: RecipeArg = None, model: Annotated[Optional[str], typer.Option(help="Model to tune (default: "
                                                                              "the run's newest).")] = None,
        run_dir: RunDirOpt = None, set: SetOpt = None):
    """Preference tuning (DPO, conservative DPO, IPO) after sft, full or LoRA."""
    overrides = list(set or []) + ([f'dpo.model="{model}"'] if model else [])
    s = _stage("dpo", recipe, run_dir, overrides)
    console.print(f"dpo: {s['pairs']} pairs, {s['steps']} steps, final loss {s['final']['loss']:.4f} -> {s['output']}")
    if s["heldout_reward_accuracy_after"] is not None:
        console.print(f"held-out preference accuracy (implicit reward) 0.500 -> {s['heldout_reward_accuracy_after']:.3f}, "
                      f"KL {s['heldout_kl_per_token']:.4f} nats/token")


def _run_recipe(run_dir: Path, recipe: Path | None, overrides: list[str]):
    """The recipe a run was made with (its resolved recipe.yaml) unless another is given."""
    from lmforge.recipe import load_recipe

    saved = run_dir / "recipe.yaml"
    return load_recipe(recipe or (saved if saved.is_file() else None), overrides)


@app.command()
def release(
    run_dir: Annotated[Optional[Path], typer.Argument(help="Run directory to release.")] = None,
    recipe: Annotated[Optional[Path], typer.Option(help="Recipe with a [release] section (default: the run's).")] = None,
    push: Annotated[Optional[str], typer.Option(help="Upload the release to this Hub repo id.")] = None,
    verify: Annotated[Optional[Path], typer.Option(help="Only check a release folder against its provenance.json.")] = None,
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
    r = expand_run_dir(_run_recipe(run_dir, recipe, list(set or [])), run_dir)
    s = build_release(r.release, run_dir)
    _print_release(s)
    if push:
        console.print(f"pushed: {push_release(s['release'], push)}")


@export_app.command("gguf")
def export_gguf_cmd(
    model: Annotated[str, typer.Argument(help="Run directory, HF folder, .gguf or Hub id.")],
    type: Annotated[Optional[list[str]], typer.Option("--type", "-t", help="f32, f16, bf16, q8_0, q4_0 (repeatable).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output file (one type) or folder.")] = None,
    verify_prompt: Annotated[Optional[list[str]], typer.Option("--verify-prompt", help="Check greedy decoding "
                                                               "in llama.cpp on this prompt (repeatable).")] = None,
):
    """Write GGUF files for llama.cpp, Ollama and LM Studio; optionally verified in llama.cpp."""
    from lmforge.export import export_gguf, verify_gguf
    from lmforge.recipe import ExportConfig

    kinds = list(type or ["f16"])
    from lmforge.models import is_run_dir

    if is_run_dir(model):  # a run: next to its release, listed in its provenance
        from lmforge.export.stage import run_export_stage

        cfg = ExportConfig(types=kinds, out=str(out) if out else None, verify_prompts=list(verify_prompt or []))
        files = run_export_stage(cfg, Path(model))["files"]
    else:
        files = []
        for kind in kinds:
            path = out if out and out.suffix == ".gguf" and len(kinds) == 1 else \
                (out or Path.cwd()) / f"{Path(model).stem or 'model'}-{kind}.gguf"
            info = export_gguf(model, path, kind)
            if verify_prompt:
                info["llama_cpp"] = verify_gguf(path, model, list(verify_prompt))
            files.append(info)
    _print_exports(files)


def _print_release(s: dict) -> None:
    console.print(f"release: {s['release']} ({s['params'] / 1e6:.2f}M parameters, {s['checkpoints']} checkpoints)")
    console.print(f"MOF: {s['mof_class']}")
    for cls, gaps in s["missing_for_next_class"].items():
        console.print(f"  missing for {cls}: " + "; ".join(gaps), highlight=False)


def _print_exports(files: list[dict]) -> None:
    for f in files:
        line = f"{f['path']}: {f['type']}, {f['bytes'] / 1e6:.1f} MB"
        if f.get("llama_cpp"):
            v = f["llama_cpp"]
            line += (f"; llama.cpp greedy identical {v['greedy_identical']}/{v['prompts']}, top-1 agreement "
                     f"{v['top1_agreement']:.1%}, tokenization identical {v['tokenization_identical']}/{v['prompts']}")
        console.print(line, highlight=False)


def _toml_list(items: list[str]) -> str:
    """A list of paths as a TOML array (JSON string syntax is valid TOML)."""
    return json.dumps([str(i) for i in items])


def main() -> None:
    # lmforge draws its own progress; HF's per-shard bars are noise. transformers reads this
    # huggingface_hub switch when it is imported, so no import (~1 s) is needed here.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app()
    except LmforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
