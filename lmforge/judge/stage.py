"""`lmforge judge`: answer MT-Bench-style questions with a model and have an LLM judge grade them,
English and German side by side (LeoLM's German MT-Bench table). Files in FastChat's layouts under
`<run>/judge/<language>/`: question.jsonl, model_answer/<model>.jsonl, reference_answer/,
model_judgment/<judge>_single.jsonl and <judge>_pair.jsonl; the report has the table per category
and turn, a chart, parse failures and retries, the judge and the cost."""

import shutil
import time
from pathlib import Path

from typing_extensions import TypedDict

from lmforge.endpoint import EndpointClient
from lmforge.errors import ConfigError, DataError
from lmforge.judge.answers import endpoint_answers, local_answers
from lmforge.judge.grade import grade_pair, grade_single
from lmforge.judge.questions import NEEDS_REFERENCE, read_answers, read_questions, write_jsonl
from lmforge.judge.report import bar_chart, judge_report
from lmforge.judge.stats import pair_rates, single_table
from lmforge.models import run_model
from lmforge.recipe import JudgeConfig
from lmforge.rundir import record_stage, write_report_section


def _answers(cfg: JudgeConfig, questions, model_ref, model_id, clients: dict) -> list[dict]:
    if "answers" in clients:
        return endpoint_answers(clients["answers"], questions, model_id, cfg.max_new_tokens)
    return local_answers(model_ref, questions, model_id, cfg.max_new_tokens)


def judge_language(
    cfg: JudgeConfig, lang: str, model_ref: str | None, model_id: str, judge_client, out: Path, clients: dict
) -> dict:
    questions, skipped = read_questions(cfg.questions[lang])
    refs = read_answers(cfg.references[lang]) if lang in cfg.references else {}
    usable = []
    for q in questions:
        if q["category"] in NEEDS_REFERENCE and q["question_id"] not in refs and "reference" not in q:
            skipped.append({"where": q["where"], "reason": f"missing reference ({q['category']} needs one)"})
        else:
            usable.append(q)
    refs |= {q["question_id"]: q["reference"] for q in usable if "reference" in q}
    folder = out / lang
    write_jsonl(folder / "question.jsonl", [{k: v for k, v in q.items() if k != "where"} for q in usable])
    if lang in cfg.references:
        (folder / "reference_answer").mkdir(parents=True, exist_ok=True)
        shutil.copy2(cfg.references[lang], folder / "reference_answer" / Path(cfg.references[lang]).name)
    answers = _answers(cfg, usable, model_ref, model_id, clients)
    write_jsonl(folder / "model_answer" / f"{model_id}.jsonl", answers)
    by_q = {a["question_id"]: a["choices"][0]["turns"] for a in answers}
    judge_id = judge_client.cfg.model
    jobs = [(q, turn) for q in usable for turn in range(1, len(q["turns"]) + 1)]
    result = {"questions": len(usable), "skipped": skipped, "judgments": 0, "failed": 0}
    if cfg.mode in ("single", "both"):
        rows = judge_client.map(
            lambda job: grade_single(
                judge_client,
                judge_id,
                lang,
                job[0],
                by_q[job[0]["question_id"]],
                refs.get(job[0]["question_id"]) if job[0]["category"] in NEEDS_REFERENCE else None,
                job[1],
                model_id,
                cfg.language_check,
            ),
            jobs,
            progress=f"judge {lang}: single",
        )
        _raise_bugs(rows)
        _count(result, rows)
        write_jsonl(folder / "model_judgment" / f"{judge_id}_single.jsonl", rows)
        result["single"] = {
            "table": single_table(rows),
            "judgments": len(rows),
            "parse_failures": sum(r.get("error") == "parse failure" for r in rows),
            "endpoint_failures": sum(str(r.get("error", "")).startswith("endpoint") for r in rows),
            "retried": sum(r["retried"] for r in rows),
            "language_penalties": sum("language_penalty" in r for r in rows),
        }
    if cfg.mode in ("pairwise", "both"):
        baseline_id, baseline = _baseline(cfg, lang, usable, clients)
        if baseline["rows"]:  # answered here: keep them next to the model's
            write_jsonl(folder / "model_answer" / f"{baseline_id}.jsonl", baseline["rows"])
        pair_jobs = [(q, t) for q, t in jobs if q["question_id"] in baseline["turns"]]
        rows = judge_client.map(
            lambda job: grade_pair(
                judge_client,
                judge_id,
                lang,
                job[0],
                by_q[job[0]["question_id"]],
                baseline["turns"][job[0]["question_id"]],
                refs.get(job[0]["question_id"]) if job[0]["category"] in NEEDS_REFERENCE else None,
                job[1],
                model_id,
                baseline_id,
            ),
            pair_jobs,
            progress=f"judge {lang}: pairwise",
        )
        _raise_bugs(rows)
        _count(result, rows)
        write_jsonl(folder / "model_judgment" / f"{judge_id}_pair.jsonl", rows)
        result["pairwise"] = {
            "baseline": baseline_id,
            **pair_rates(rows, cfg.bootstrap_samples),
            "retried": sum(r["retried"] for r in rows),
        }
    return result


def _count(result: dict, rows: list[dict]) -> None:
    result["judgments"] += len(rows)
    result["failed"] += sum("error" in r for r in rows)


def _raise_bugs(rows: list) -> None:
    for r in rows:
        if isinstance(r, Exception):
            raise r


def _baseline(cfg: JudgeConfig, lang: str, questions: list[dict], clients: dict) -> tuple[str, dict]:
    if lang in cfg.baseline_answers:
        path = Path(cfg.baseline_answers[lang])
        return path.stem, {"turns": read_answers(path), "rows": []}
    if cfg.baseline_model:
        name = Path(cfg.baseline_model).name or "baseline"
        rows = local_answers(cfg.baseline_model, questions, name, cfg.max_new_tokens)
        return name, {"turns": {r["question_id"]: r["choices"][0]["turns"] for r in rows}, "rows": rows}
    raise ConfigError(f"judge.mode = {cfg.mode!r} needs judge.baseline_answers.{lang} or judge.baseline_model")


class JudgeResult(TypedDict):
    model: str
    model_id: str
    judge: dict[str, str]  # endpoint, model
    languages: dict[str, dict]  # language -> single (scores per category and turn) and/or pairwise
    endpoint: dict  # requests, failures, retries, tokens, cost


def run_judge_stage(cfg: JudgeConfig, run_dir: str | Path) -> JudgeResult:
    started = time.time()
    run_dir = Path(run_dir)
    if not cfg.questions:
        raise ConfigError("judge.questions: give at least one language's question file")
    model_ref = None if cfg.answers_endpoint else (cfg.model or run_model(run_dir))
    if model_ref is None and not cfg.answers_endpoint:
        raise ConfigError(f"judge: no model to answer ({run_dir} has none; set judge.model or judge.answers_endpoint)")
    out = Path(cfg.out) if cfg.out else run_dir / "judge"
    out.mkdir(parents=True, exist_ok=True)
    judge_client = EndpointClient(cfg.judge, cache_path=out / "judge_cache.jsonl")
    clients = {"dir": out}
    if cfg.answers_endpoint:
        clients["answers"] = EndpointClient(cfg.answers_endpoint, cache_path=out / "answers_cache.jsonl")
    model_id = cfg.model_id or (clients["answers"].cfg.model if cfg.answers_endpoint else Path(str(model_ref)).name)
    try:
        languages = {
            lang: judge_language(cfg, lang, str(model_ref) if model_ref else None, model_id, judge_client, out, clients)
            for lang in cfg.questions
        }
    finally:
        judge_client.close()
        if "answers" in clients:
            clients["answers"].close()
    judged, failed = (sum(r[k] for r in languages.values()) for k in ("judgments", "failed"))
    if judged and failed == judged:
        raise DataError(
            f"judge: all {judged} judgments failed (the judge's replies are in {out}); first: "
            f"{judge_client.first_error or 'no rating in any reply'}"
        )
    summary = {
        "model": str(model_ref or cfg.answers_endpoint.base_url),
        "model_id": model_id,
        "judge": {"endpoint": cfg.judge.base_url, "model": judge_client.cfg.model},
        "languages": languages,
        "endpoint": judge_client.accounting(),
    }
    plots = bar_chart(run_dir, summary)
    record_stage(run_dir, "judge", cfg.model_dump(), [Path(p) for p in cfg.questions.values()], None, started, summary)
    write_report_section(run_dir, "judge", judge_report(summary, plots))
    return summary
