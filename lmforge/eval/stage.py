"""`lmforge eval`: score a model (and optionally a baseline and every checkpoint) and report.

Full results, per-item correctness and per-document bits included, go to
`<run>/eval/results.json` so later comparisons need no re-run; the manifest keeps headlines.
"""

import json
import os
import time
from functools import partial
from pathlib import Path

import torch
from typing_extensions import TypedDict

from lmforge.errors import ConfigError
from lmforge.eval.aggregate import aggregate, aggregate_delta
from lmforge.eval.bits_per_byte import bits_per_byte
from lmforge.eval.compare import compare_results, reading
from lmforge.eval.generative import endpoint_replies, engine_replies, evaluate_generative, evaluate_instructions
from lmforge.eval.harness import run_harness
from lmforge.eval.memorization import memorization
from lmforge.eval.multiple_choice import evaluate_task, stderr
from lmforge.eval.report import eval_report
from lmforge.eval.shard import sharded, world
from lmforge.models import load_model_and_tokenizer, load_tokenizer, resolve_model_dir
from lmforge.recipe import EvalConfig
from lmforge.rundir import atomic_write_text, record_stage, write_report_section
from lmforge.tasks import Task, load_task


def _device() -> str:
    """This process's device; under torchrun it joins the process group first (items are sharded)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from lmforge.train.distributed import setup_distributed

        return str(setup_distributed().device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def evaluate_model(model, tokenizer, cfg: EvalConfig, tasks: list[Task], work_dir: Path, harness: bool = True) -> dict:
    """Bits per byte per language and every task, by lmforge or (cfg.harness) by lm-eval."""
    out = {
        "bits_per_byte": {
            lang: bits_per_byte(model, tokenizer, [path], cfg.text_field, cfg.batch_size, cfg.max_docs)
            for lang, path in cfg.bpb_texts.items()
        }
    }
    if harness and cfg.harness == "lm-eval":
        out["tasks"] = run_harness(
            model,
            tokenizer,
            cfg.harness_tasks,
            tasks,
            work_dir,
            cfg.num_fewshot,
            cfg.batch_size,
            cfg.limit,
            cfg.fewshot_seed,
        )
    else:
        out["tasks"] = [score_task(model, tokenizer, t, cfg) for t in tasks]
    out["aggregate"] = aggregate(out["tasks"], cfg.bootstrap_samples)
    return out


def score_task(model, tokenizer, task: Task, cfg: EvalConfig) -> dict:
    """One task by lmforge: log-likelihoods for multiple choice, the decode engine for generation."""

    def replies(prompts: list[str], indices: list[int]) -> list[list[str]]:
        return engine_replies(model, tokenizer, prompts, task.spec, cfg.fewshot_seed, cfg.batch_size, indices)

    if task.spec.output == "instructions":
        return evaluate_instructions(task, replies, cfg.limit)
    if task.spec.output == "generate":
        return evaluate_generative(task, replies, cfg.num_fewshot, cfg.fewshot_seed, cfg.limit)
    return evaluate_task(model, tokenizer, task, cfg.num_fewshot, cfg.fewshot_seed, cfg.limit, cfg.batch_size)


def evaluate_endpoint(cfg: EvalConfig, tasks: list[Task], work_dir: Path) -> dict:
    """Every task through an OpenAI-compatible endpoint (no local model): generative ones by its
    completions, multiple-choice ones by its prompt log-probs, split into tokens by the served
    model's tokenizer (cfg.model names that model; only its tokenizer loads)."""
    from lmforge.endpoint import EndpointClient
    from lmforge.eval.endpoint_scoring import endpoint_loglikelihoods

    choices = [t.spec.name for t in tasks if t.spec.output == "multiple_choice"]
    if cfg.bpb_texts:
        raise ConfigError("eval.endpoint: bits per byte need the model itself; evaluate it locally")
    if choices and not cfg.model:
        raise ConfigError(
            f"eval.endpoint: multiple-choice tasks ({', '.join(choices)}) are scored token by token: name the "
            "served model too (`lmforge eval MODEL --endpoint URL`; a folder, run, .gguf or Hub id) for its tokenizer"
        )
    tokenizer = load_tokenizer(cfg.model) if choices else None
    client = EndpointClient(cfg.endpoint, work_dir / "endpoint_cache.jsonl")
    try:
        scored = []
        for t in tasks:

            def replies(prompts: list[str], indices: list[int], spec=t.spec) -> list[list[str]]:
                return endpoint_replies(client, prompts, spec, cfg.fewshot_seed, indices)

            if t.spec.output == "instructions":
                scored.append(evaluate_instructions(t, replies, cfg.limit))
            elif t.spec.output == "generate":
                scored.append(evaluate_generative(t, replies, cfg.num_fewshot, cfg.fewshot_seed, cfg.limit))
            else:
                scorer = partial(endpoint_loglikelihoods, client)
                scored.append(
                    evaluate_task(None, tokenizer, t, cfg.num_fewshot, cfg.fewshot_seed, cfg.limit, scorer=scorer)
                )
        client.check_answered("eval")
    finally:
        client.close()
    aggregated = aggregate(scored, cfg.bootstrap_samples)
    return {"bits_per_byte": {}, "tasks": scored, "aggregate": aggregated, "endpoint": client.accounting()}


def exclude_contaminated(tasks: list[dict], flagged: dict[str, set]) -> None:
    """Each task's metrics again without its contaminated items, as `clean` beside the full set."""
    for t in tasks:
        drop = flagged.get(t["task"], set())
        clean = {}
        for metric, values in t["per_item"].items():
            kept = [v for i, v in enumerate(values) if i not in drop]
            clean[metric] = {"value": sum(kept) / len(kept) if kept else float("nan"), "stderr": stderr(kept)}
        t["clean"] = {"items": t["items"] - len([i for i in drop if i < t["items"]]), "metrics": clean}


def aggregate_rows(results: dict, cfg: EvalConfig) -> list[dict]:
    """The per-language aggregate's change, as rows of the comparison table."""

    deltas = aggregate_delta(results["tasks"], results["baseline"]["tasks"], cfg.bootstrap_samples)
    return [
        {
            "name": "aggregate (centred)",
            "language": lang,
            "metric": "core",
            "reading": reading(lang, cfg.target_language, cfg.source_language),
            **d,
        }
        for lang, d in deltas.items()
    ]


def _checkpoints(run_dir: Path) -> list[Path]:
    return sorted(p for p in (run_dir / "checkpoints").glob("step-*") if (p / "config.json").is_file())


def sweep(run_dir: Path, cfg: EvalConfig, tasks: list[Task]) -> list[dict]:
    """Every checkpoint of the run (the log-spaced suite included), with its training tokens."""
    rows = []
    for ckpt in _checkpoints(run_dir):
        model, tokenizer = load_model_and_tokenizer(ckpt, _device())
        state = json.loads((ckpt / "trainer_state.json").read_text()) if (ckpt / "trainer_state.json").is_file() else {}
        r = evaluate_model(model, tokenizer, cfg, tasks, run_dir / "eval", harness=False)
        rows.append({"checkpoint": ckpt.name, "step": state.get("step"), "tokens": state.get("tokens"), **headline(r)})
    return rows


def headline(results: dict) -> dict:
    """The numbers of `evaluate_model`'s results without the per-item vectors (manifest, sweep)."""
    return {
        "bits_per_byte": {l: s["bits_per_byte"] for l, s in results["bits_per_byte"].items()},
        "tasks": {t["task"]: {m: v["value"] for m, v in t["metrics"].items()} for t in results["tasks"]},
        "aggregate": {lang: a["value"] for lang, a in results.get("aggregate", {}).items()},
    }


def _run_on_endpoint(cfg: EvalConfig, run_dir: Path, tasks: list[Task], started: float) -> "EvalResult":
    work_dir = run_dir / "eval"
    name = f"{cfg.endpoint.base_url} ({cfg.endpoint.model or 'its only model'})"
    results = {"model": name, **evaluate_endpoint(cfg, tasks, work_dir)}
    atomic_write_text(work_dir / "results.json", json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    summary = {"model": name, **headline(results), "results": str(work_dir / "results.json")}
    record_stage(run_dir, "eval", cfg.model_dump(), list(cfg.tasks), None, started, summary)
    write_report_section(run_dir, "eval", eval_report(run_dir, results, cfg))
    return summary


class EvalResult(TypedDict, total=False):
    """The headline figures; per-item results are in `results` (results.json)."""

    model: str
    bits_per_byte: dict[str, float]  # language -> bits per byte
    tasks: dict[str, dict[str, float]]  # task -> metric -> value
    aggregate: dict[str, float]  # language -> centred accuracy over its tasks (eval/aggregate.py)
    clean: dict[str, dict[str, float]]  # with eval.exclude_contaminated: task -> metric -> value
    results: str
    memorization: dict  # with eval.memorization
    comparison: list[dict]  # with eval.baseline, per benchmark: gain and forgetting with 95% intervals
    judge: dict  # with [eval.judge]: language -> scores


def run_eval_stage(cfg: EvalConfig, run_dir: str | Path) -> EvalResult:
    """Evaluate cfg.model (default: the run's newest checkpoint); tasks are checked before any model
    loads. Under torchrun every process runs this and scores its share of the items."""
    with sharded():
        return _run_eval_stage(cfg, run_dir)


def _run_eval_stage(cfg: EvalConfig, run_dir: str | Path) -> EvalResult:
    started = time.time()
    run_dir = Path(run_dir)
    tasks = [load_task(p) for p in cfg.tasks]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and (cfg.endpoint is not None or cfg.harness):
        raise ConfigError(
            "eval under torchrun shards lmforge's own scoring; eval.endpoint runs its requests concurrently "
            "and eval.harness uses lm-eval's launcher: run those in one process"
        )
    if cfg.endpoint is not None:
        return _run_on_endpoint(cfg, run_dir, tasks, started)
    model_dir = resolve_model_dir(cfg.model or run_dir)
    baseline_dir = resolve_model_dir(cfg.baseline) if cfg.baseline else None
    work_dir = run_dir / "eval"
    model, tokenizer = load_model_and_tokenizer(model_dir, _device())
    results = {"model": str(model_dir), **evaluate_model(model, tokenizer, cfg, tasks, work_dir)}
    if cfg.memorization:
        data = cfg.memorization_data or run_dir / "tokens" / "train"
        results["memorization"] = memorization(
            model, data, cfg.memorization_samples, cfg.memorization_prefix, cfg.memorization_continuation
        )
    del model
    if baseline_dir:
        base, base_tok = load_model_and_tokenizer(baseline_dir, _device())
        results["baseline"] = {"model": str(baseline_dir), **evaluate_model(base, base_tok, cfg, tasks, work_dir)}
        results["comparison"] = compare_results(
            results, results["baseline"], cfg.target_language, cfg.source_language, cfg.bootstrap_samples
        ) + aggregate_rows(results, cfg)
        del base
    if cfg.sweep:
        results["sweep"] = sweep(run_dir, cfg, tasks)
    if cfg.exclude_contaminated:
        from lmforge.decontaminate import contaminated_items

        exclude_contaminated(results["tasks"], contaminated_items(run_dir))
    summary = {"model": str(model_dir), **headline(results), "results": str(work_dir / "results.json")}
    if world()[0] != 0:  # every process holds the gathered results; one writes them
        return summary
    atomic_write_text(work_dir / "results.json", json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    if cfg.exclude_contaminated:
        summary["clean"] = {
            t["task"]: {m: v["value"] for m, v in t["clean"]["metrics"].items()} for t in results["tasks"]
        }
    for key in ("memorization", "comparison"):
        if key in results:
            summary[key] = results[key]
    inputs = [model_dir, *cfg.bpb_texts.values(), *cfg.tasks, *([baseline_dir] if baseline_dir else [])]
    record_stage(run_dir, "eval", cfg.model_dump(), inputs, None, started, summary)
    write_report_section(run_dir, "eval", eval_report(run_dir, results, cfg))
    if cfg.judge:  # [eval.judge]: the same model, graded MT-Bench-style (its own report section)
        from lmforge.judge import run_judge_stage

        judge_cfg = (
            cfg.judge
            if cfg.judge.model or cfg.judge.answers_endpoint
            else cfg.judge.model_copy(update={"model": str(model_dir)})
        )
        summary["judge"] = run_judge_stage(judge_cfg, run_dir)["languages"]
    return summary
