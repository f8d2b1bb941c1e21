"""`lmforge translate`: instruction sets (every format `sft` reads) and multiple-choice tasks into
another language through an OpenAI-compatible endpoint, in the same format, every record accounted
for: translated + rejected = read. Outputs in `<run>/translate/`: one file per input, `rejects.jsonl`
(file:line, reason, the record), the answer cache that makes a rerun resume, and a report section."""

import json
import time
from collections import Counter
from pathlib import Path

from typing_extensions import TypedDict

from lmforge.chat.formats import detect
from lmforge.endpoint import EndpointClient, EndpointError
from lmforge.errors import ConfigError, DataError
from lmforge.recipe import TranslateConfig
from lmforge.rundir import atomic_write_text, record_stage, write_report_section
from lmforge.translate.fields import template_fields
from lmforge.translate.record import Rejected, translate_record

TASK_SUFFIXES = (".toml", ".yaml", ".yml")


def read_jsonl(path: Path) -> tuple[list[tuple[dict, str]], list[tuple[str, str]]]:
    """(records with file:line, malformed lines with file:line and why) — malformed lines are
    rejects, not a reason to stop."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    good, bad = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                bad.append((where, f"malformed JSON: {e.msg}"))
                continue
            if not isinstance(record, dict):
                bad.append((where, "malformed JSON: not an object"))
                continue
            good.append((record, where))
    return good, bad


def _translate_all(
    client, items: list[tuple[dict, str]], fmt_of, cfg, task_fields, label: str, rejects: list
) -> tuple[list[dict], Counter]:
    """(translated records, rejected count per reason); each reject goes to `rejects` with file:line."""

    def one(item):
        record, _ = item
        return translate_record(client, record, fmt_of(record), cfg, task_fields)

    kept, reasons = [], Counter()
    for (record, where), result in zip(items, client.map(one, items, progress=label)):
        if isinstance(result, dict):
            kept.append(result)
        else:
            kind, message = _reason(result)
            reasons[kind] += 1
            rejects.append({"where": where, "reason": message, "record": record})
    return kept, reasons


FATAL = {"HTTP 401", "HTTP 403", "HTTP 404"}  # a wrong key, model or URL: every record would fail the same way


def _reason(e: Exception) -> tuple[str, str]:
    if isinstance(e, Rejected):
        return e.kind, str(e)
    if isinstance(e, EndpointError):
        if e.reason in FATAL:
            raise e
        return f"endpoint: {e.reason}", str(e)
    if isinstance(e, (KeyError, TypeError, ValueError)):
        return "unreadable record", f"unreadable record: {e}"
    raise e  # a bug, not a bad record


def translate_file(client, path: Path, cfg: TranslateConfig, out: Path, rejects: list) -> dict:
    records, malformed = read_jsonl(path)

    def fmt_of(record):
        return cfg.format if cfg.format != "auto" else detect(record)

    kept, reasons = _translate_all(client, records, fmt_of, cfg, None, path.name, rejects)
    for where, message in malformed:
        reasons["malformed JSON"] += 1
        rejects.append({"where": where, "reason": message, "record": None})
    rows = ([r for r, _ in records] if cfg.keep_both else []) + kept
    target = out / f"{path.stem}.{cfg.target_language}.jsonl"
    atomic_write_text(target, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {
        "input": str(path),
        "output": str(target),
        "read": len(records) + len(malformed),
        "translated": len(kept),
        "rejected": sum(reasons.values()),
        "reasons": dict(reasons),
    }


def translate_task(client, spec_path: Path, cfg: TranslateConfig, out: Path, rejects: list) -> dict:
    """A multiple-choice task: its items (question fields and choices; answer indices kept) and its
    prompt template, into a new task with its own spec, GermanBench-style."""
    from lmforge.tasks import load_task

    task = load_task(spec_path)
    spec = task.spec
    if spec.output == "generate":  # answers and worked solutions need their numbers kept exact: not done
        raise ConfigError(f"{spec_path}: translating generative tasks is not supported yet (multiple choice only)")
    fields = template_fields(spec.prompt)
    items = [(doc, f"{spec_path.parent / spec.data}:{i + 1}") for i, doc in enumerate(task.docs)]
    kept, reasons = _translate_all(client, items, lambda r: "task", cfg, (fields, spec.choices), spec.name, rejects)
    prompt = spec.prompt
    try:  # the template's words too ("Question:" -> "Frage:"); its {{fields}} are protected
        prompt = _translate_template(client, spec.prompt, cfg)
    except (Rejected, EndpointError) as e:
        rejects.append(
            {
                "where": str(spec_path),
                "reason": f"prompt template kept in the source language: {e}",
                "record": {"prompt": spec.prompt},
            }
        )
    base = spec.name.removesuffix(f"_{cfg.source_language}")
    name = f"{base}_{cfg.target_language}"
    data = out / f"{name}.jsonl"
    atomic_write_text(data, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    new_spec = {
        **spec.model_dump(exclude_none=True),
        "name": name,
        "benchmark": spec.benchmark or base,
        "language": cfg.target_language,
        "data": data.name,
        "prompt": prompt,
    }
    new_spec.pop("fewshot_data", None)  # few-shot examples come from the translated items
    spec_out = out / f"{name}.toml"
    atomic_write_text(
        spec_out,
        f"# translated from {spec_path} by lmforge translate ({client.cfg.model})\n"
        + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in new_spec.items()),
    )
    return {
        "input": str(spec_path),
        "output": str(spec_out),
        "read": len(items),
        "translated": len(kept),
        "rejected": sum(reasons.values()),
        "reasons": dict(reasons),
    }


def _translate_template(client, prompt: str, cfg: TranslateConfig) -> str:
    """The template as a one-field record (its {{fields}} are protected like any template field)."""
    return translate_record(client, {"text": prompt}, "oasst1", cfg)["text"]


class TranslateResult(TypedDict):
    """translated + rejected = read, per file and in all."""

    files: list[dict]  # per input: input, output, read, translated, rejected, reasons
    read: int
    translated: int
    rejected: int
    rejects: str
    endpoint: dict


def run_translate_stage(cfg: TranslateConfig, run_dir: str | Path) -> TranslateResult:
    started = time.time()
    run_dir = Path(run_dir)
    if not cfg.inputs:
        raise ConfigError("translate.inputs: give at least one instruction file or task spec")
    for p in cfg.inputs:
        if not Path(p).is_file():
            raise ConfigError(f"translate.inputs: {p}: no such file")
    out = Path(cfg.out) if cfg.out else run_dir / "translate"
    out.mkdir(parents=True, exist_ok=True)
    client = EndpointClient(cfg.endpoint, cache_path=out / "cache.jsonl")
    rejects: list[dict] = []
    try:
        files = [
            translate_task(client, Path(p), cfg, out, rejects)
            if Path(p).suffix in TASK_SUFFIXES
            else translate_file(client, Path(p), cfg, out, rejects)
            for p in cfg.inputs
        ]
    finally:
        client.close()
    atomic_write_text(out / "rejects.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects))
    client.check_answered(f"translate (rejects in {out / 'rejects.jsonl'})")
    summary = {
        "files": files,
        "read": sum(f["read"] for f in files),
        "translated": sum(f["translated"] for f in files),
        "rejected": sum(f["rejected"] for f in files),
        "rejects": str(out / "rejects.jsonl"),
        "endpoint": client.accounting(),
    }
    record_stage(run_dir, "translate", cfg.model_dump(), [Path(p) for p in cfg.inputs], None, started, summary)
    write_report_section(run_dir, "translate", translate_report(summary, cfg))
    return summary


def translate_report(s: dict, cfg: TranslateConfig) -> str:
    e = s["endpoint"]
    lines = [
        "## Translate",
        "",
        f"{cfg.source_language} → {cfg.target_language} through `{e['endpoint']}` "
        f"(model `{e['model']}`): {s['read']:,} records read, {s['translated']:,} translated, "
        f"{s['rejected']:,} rejected (`{Path(s['rejects']).name}` says why, with file:line).",
        "",
        "| input | output | read | translated | rejected | reasons |",
        "|---|---|---:|---:|---:|---|",
    ]
    for f in s["files"]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(f["reasons"].items(), key=lambda kv: -kv[1])) or "–"
        lines.append(
            f"| `{Path(f['input']).name}` | `{Path(f['output']).name}` | {f['read']} | {f['translated']} | "
            f"{f['rejected']} | {reasons} |"
        )
    lines += [
        "",
        f"Endpoint: {e['requests']:,} requests, {e['answered_from_cache']:,} answered from the cache, "
        f"{e['retries']:,} retries, failures {e['failures'] or 'none'}; {e['prompt_tokens']:,} prompt and "
        f"{e['completion_tokens']:,} completion tokens"
        + (f", cost {e['cost']:.4f}" if e["cost"] is not None else "")
        + ".",
    ]
    return "\n".join(lines)
