"""Bridge to lm-evaluation-harness: its registered tasks, or lmforge tasks exported to it.

Users with internet get leaderboard-comparable numbers on the harness's own tasks
(`arc_de`, `hellaswag_de`, `m_mmlu_de`, `belebele_deu_Latn`, ...), scored by the harness's
HFLM on the model lmforge loaded (safetensors only). lmforge's own JSONL tasks export to a
harness YAML over the same local files, which is how the parity test runs the harness
offline. lm-eval is an optional dependency: `pip install 'lmforge[eval]'`.
"""

import logging
from pathlib import Path

import yaml

from lmforge.errors import ConfigError, DataError
from lmforge.eval.multiple_choice import stderr
from lmforge.tasks import Task


def export_task(task: Task, out_dir: str | Path) -> Path:
    """Write a harness YAML for a lmforge task; the data stays where it is (absolute paths)."""
    spec = task.spec
    data = (task.path.parent / spec.data).resolve()
    files = {"test": str(data)}
    if spec.fewshot_data:
        files["train"] = str((task.path.parent / spec.fewshot_data).resolve())
    config = {
        "task": spec.name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": files},
        "test_split": "test",
        "fewshot_split": "train" if spec.fewshot_data else "test",
        "output_type": "multiple_choice",
        "doc_to_text": spec.prompt,
        "doc_to_choice": spec.choices,
        "doc_to_target": spec.answer,
        "target_delimiter": spec.target_delimiter,
        "fewshot_delimiter": spec.fewshot_delimiter,
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in spec.metrics],
        "metadata": {"version": 1.0, "language": spec.language, "benchmark": task.benchmark},
    }
    if spec.output == "generate":
        del config["doc_to_choice"]
        config |= _generate_until(task)
    if spec.fewshot_sampler == "first_n":
        config.setdefault("fewshot_config", {})["sampler"] = "first_n"
    if spec.num_fewshot:  # the harness ignores a run's num_fewshot for tasks whose YAML says 0
        config["num_fewshot"] = spec.num_fewshot
    path = Path(out_dir) / f"{spec.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _first(task: Task, field: str) -> str:
    """A target field as a harness template: its first entry where items hold a list of answers."""
    listed = any(isinstance(d.get(field), list) for d in task.docs + task.fewshot_docs)
    return f"{{{{{field}[0]}}}}" if listed else field


def _generate_until(task: Task) -> dict:
    """A generative task as the harness's `generate_until`: the same stops and length, greedy (or
    sampled), few-shot examples ending in their worked answer, and the extraction as its regex
    filter (the same pattern, first or last match), so both tools extract the same answer."""
    from lmforge.eval.answers import LETTER, NUMBER

    spec = task.spec
    out = {
        "output_type": "generate_until",
        "doc_to_target": _first(task, spec.answer),
        "fewshot_config": {"sampler": "default", "doc_to_target": _first(task, spec.fewshot_target or spec.answer)},
        "generation_kwargs": {
            "until": list(spec.until),
            "max_gen_toks": spec.max_new_tokens,
            "do_sample": spec.temperature > 0,
            "temperature": spec.temperature,
        },
        "repeats": spec.samples,
        "metric_list": [
            {
                "metric": "exact_match",
                "aggregation": "mean",
                "higher_is_better": True,
                "ignore_case": "case" in spec.normalize,
                "ignore_punctuation": "punctuation" in spec.normalize,
            }
        ],
    }
    pattern, select = {
        "regex": (spec.regex, 0),
        "first_number": (NUMBER.pattern, 0),
        "last_number": (NUMBER.pattern, -1),
        "choice_letter": (LETTER.pattern, 0),
    }.get(spec.extract, (None, 0))
    steps = [{"function": "regex", "regex_pattern": pattern, "group_select": select}] if pattern else []
    out["filter_list"] = [{"name": "extracted", "filter": [*steps, {"function": "take_first"}]}]
    return out


def _as_list(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _language(name: str, exported: dict[str, Task]) -> tuple[str, str]:
    """(benchmark, language) of a harness task: known for exported ones, else a `_xx` suffix guess."""
    if name in exported:
        return exported[name].benchmark, exported[name].spec.language
    head, _, tail = name.rpartition("_")
    return (head, tail) if head and len(tail) == 2 else (name, "-")


def _chance(metrics: dict, samples: list[dict]) -> float | None:
    """Guessing's expected score: 0 for exact match, else the mean of 1 / choices over the items of a
    multiple-choice task (one log-likelihood request per choice); unknown otherwise."""
    if "exact_match" in metrics:
        return 0.0
    if "acc" in metrics and samples and all(len(s.get("arguments") or ()) > 1 for s in samples):
        return sum(1 / len(s["arguments"]) for s in samples) / len(samples)
    return None


def run_harness(
    model,
    tokenizer,
    task_names: list[str],
    exported: list[Task],
    work_dir: str | Path,
    num_fewshot: int | None = None,
    batch_size: int = 16,
    limit: int | None = None,
    seed: int = 1234,
    lm=None,
) -> list[dict]:
    """Evaluate with the harness's own scoring; results in the same shape as `evaluate_task`. `lm`:
    another of the harness's models to score with (e.g. `local-completions` against a server)
    instead of its HFLM over `model`."""
    try:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise ConfigError("eval.harness = 'lm-eval' needs lm-evaluation-harness: pip install 'lmforge[eval]'") from None
    include = Path(work_dir) / "harness_tasks"
    by_name = {t.spec.name: t for t in exported}
    for t in exported:
        export_task(t, include)
    names = list(dict.fromkeys([*task_names, *by_name]))
    manager = TaskManager(include_path=str(include) if exported else None)
    unknown = [n for n in names if n not in manager.all_tasks]
    if unknown:
        raise ConfigError(f"lm-eval does not know task(s) {', '.join(unknown)}")
    logging.getLogger("lm-eval").setLevel(logging.ERROR)
    lm = lm or HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    try:
        out = simple_evaluate(
            model=lm,
            tasks=names,
            num_fewshot=num_fewshot,
            limit=limit,
            task_manager=manager,
            log_samples=True,
            fewshot_random_seed=seed,
            bootstrap_iters=0,
            verbosity="ERROR",
        )
    except OSError as e:  # ConnectionError included: registered tasks fetch their data from the Hub
        raise DataError(
            f"lm-eval could not load task data ({str(e).splitlines()[0]}); its registered tasks "
            "download from the Hugging Face Hub, lmforge tasks (-t SPEC) run offline"
        ) from None
    results = []
    for name in names:
        scores = out["results"].get(name, {})
        samples = sorted(out["samples"].get(name, []), key=lambda s: s["doc_id"])
        benchmark, language = _language(name, by_name)
        known = ("acc", "acc_norm", "acc_bytes", "exact_match")
        metrics = {k.split(",")[0]: v for k, v in scores.items() if k.split(",")[0] in known and "_stderr" not in k}
        per_item = {m: [float(s[m]) for s in samples] for m in metrics if samples and m in samples[0]}
        results.append(
            {
                "task": name,
                "benchmark": benchmark,
                "language": language,
                "items": len(samples),
                "num_fewshot": out.get("n-shot", {}).get(name, num_fewshot),
                "metrics": {
                    m: {"value": float(v), "stderr": stderr(per_item[m]) if m in per_item else float("nan")}
                    for m, v in metrics.items()
                },
                "per_item": per_item,
                "source": "lm-eval",
            }
        )
        chance = _chance(metrics, samples)
        if chance is not None:  # what the per-language aggregate rescales by (eval/aggregate.py)
            results[-1]["chance"] = chance
        if samples and "filtered_resps" in samples[0] and name in by_name and by_name[name].spec.output == "generate":
            results[-1]["replies"] = [[r[0] if isinstance(r, list) else r for r in s["resps"]] for s in samples]
            results[-1]["answers"] = [_as_list(s["filtered_resps"]) for s in samples]
    return results
