"""`lmforge decontaminate RUN`: which evaluation items the run's training data contains.

Every evaluation item (task prompts with their gold answers, judge questions) is indexed as word
n-grams (lmforge/text/ngrams.py); every training source of the run (curate, tokenize, adapt, SFT,
DPO, translate, self-instruct: decontaminate/sources.py) streams past the index once. The result,
per task: items checked, items too short to check, contaminated items and the sources that hold
them, each with one matching span and its file:line. `contaminated.jsonl` lists the items; `eval
--exclude-contaminated` scores the rest beside the full set.
"""

import json
import time
from collections import Counter
from pathlib import Path

from typing_extensions import TypedDict

from lmforge.decontaminate.items import eval_items
from lmforge.decontaminate.sources import iter_texts, training_sources
from lmforge.errors import ConfigError
from lmforge.recipe import DecontaminateConfig
from lmforge.rundir import atomic_write_text, record_stage, write_report_section
from lmforge.rundir.manifest import read_manifest
from lmforge.text.ngrams import NgramIndex


class DecontaminateResult(TypedDict):
    items: int  # evaluation items indexed
    too_short: int  # items under min_ngram words (not checked)
    contaminated: int  # items found in some training source
    documents: dict[str, int]  # source -> texts read
    tasks: dict[str, dict]  # task -> items, contaminated, by source
    output: str  # contaminated.jsonl


def _defaults(cfg: DecontaminateConfig, run_dir: Path) -> DecontaminateConfig:
    """The run's own evaluation (its eval tasks, its judge questions) unless the config names some."""
    config = read_manifest(run_dir).get("config", {})
    tasks = cfg.tasks or (config.get("eval") or {}).get("tasks") or []
    judge = cfg.judge_questions
    if judge is None:
        judge = (config.get("judge") or {}).get("questions") or {}
    return cfg.model_copy(update={"tasks": tasks, "judge_questions": judge})


def scan(index: NgramIndex, sources: dict[str, list[str]]) -> tuple[dict[int, dict], Counter]:
    """item index -> {source: texts holding it, example: first match}; and texts read per source."""
    found: dict[int, dict] = {}
    read = Counter()
    for name, paths in sources.items():
        for text, where in iter_texts(paths):
            read[name] += 1
            for item, span in index.matches(text).items():
                hit = found.setdefault(item, {"sources": Counter(), "example": None})
                hit["sources"][name] += 1
                hit["example"] = hit["example"] or {"source": name, "where": where, "span": span}
    return found, read


def run_decontaminate(cfg: DecontaminateConfig, run_dir: str | Path) -> DecontaminateResult:
    started, run_dir = time.time(), Path(run_dir)
    cfg = _defaults(cfg, run_dir)
    if not cfg.tasks and not cfg.judge_questions:
        raise ConfigError("decontaminate: no evaluation items (give tasks, or run it in a run whose eval names tasks)")
    sources = cfg.sources or training_sources(run_dir)
    if not sources:
        raise ConfigError(f"decontaminate: {run_dir} records no training data (and decontaminate.sources names none)")
    keys, texts = eval_items(cfg.tasks, cfg.judge_questions)
    index = NgramIndex(keys, texts, cfg.ngram, cfg.min_ngram)
    found, read = scan(index, sources)
    rows, short = [], set(index.too_short)
    tasks: dict[str, dict] = {}
    for i, (task, item) in enumerate(keys):
        t = tasks.setdefault(task, {"items": 0, "too_short": 0, "contaminated": 0, "by_source": Counter()})
        t["items"] += 1
        t["too_short"] += (task, item) in short
        if i in found:
            t["contaminated"] += 1
            t["by_source"].update(found[i]["sources"].keys())
            rows.append(
                {"task": task, "item": item, "sources": dict(found[i]["sources"]), "example": found[i]["example"]}
            )
    out = run_dir / "decontaminate" / "contaminated.jsonl"
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    for t in tasks.values():
        t["by_source"] = dict(t["by_source"])
    result = DecontaminateResult(
        items=len(keys),
        too_short=len(index.too_short),
        contaminated=len(rows),
        documents=dict(read),
        tasks=tasks,
        output=str(out),
    )
    inputs = [*cfg.tasks, *cfg.judge_questions.values(), *[p for paths in sources.values() for p in paths]]
    record_stage(run_dir, "decontaminate", cfg.model_dump(), inputs, None, started, dict(result))
    write_report_section(run_dir, "decontaminate", _report(result, rows, cfg))
    return result


def _report(r: DecontaminateResult, rows: list[dict], cfg: DecontaminateConfig) -> str:
    lines = [
        "## Decontamination",
        "",
        f"{r['items']} evaluation items against the run's training data ({cfg.ngram}-word n-grams, "
        f"whole items when shorter, items under {cfg.min_ngram} words not checked: {r['too_short']}); "
        "texts read: " + ", ".join(f"{s} {n:,}" for s, n in r["documents"].items()) + ".",
        "",
        "| task | items | too short | contaminated | in sources |",
        "|---|---:|---:|---:|---|",
    ]
    for name, t in r["tasks"].items():
        where = ", ".join(f"{s} {n}" for s, n in t["by_source"].items()) or "-"
        lines.append(f"| {name} | {t['items']} | {t['too_short']} | {t['contaminated']} | {where} |")
    if rows:
        lines += ["", "Examples (first match of each of the first items):", ""]
        lines += [
            f'- {row["task"]} #{row["item"]}: "{row["example"]["span"]}" ({row["example"]["where"]})'
            for row in rows[:10]
        ]
    return "\n".join(lines)


def contaminated_items(run_dir: str | Path) -> dict[str, set]:
    """task -> item indices found in the training data, from the run's last `decontaminate`."""
    path = Path(run_dir) / "decontaminate" / "contaminated.jsonl"
    if not path.is_file():
        raise ConfigError(f"{path}: not found; run `lmforge decontaminate {run_dir}` first")
    out: dict[str, set] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        out.setdefault(row["task"], set()).add(row["item"])
    return out
