"""`lmforge distill`: distilling step-by-step (Hsieh et al., 2023).

A teacher behind any OpenAI-compatible endpoint (the shared client: cached, resumable, retried)
solves each training input of a generative task with a worked rationale, prompted with the task's
own worked examples under a header written for lmforge (EN/DE). Its label is extracted the way the
task scores answers; an input where it disagrees with the gold label is counted, and dropped or
kept (`disagreeing`). The student then learns two tasks told apart by a prefix on the input,
`[label]` -> the gold label and `[rationale]` -> the teacher's rationale, the rationale task's loss
weighted by λ (`rationale_weight`), through `sft`'s training core; at test time it answers with
`[label]` alone, so it writes no rationale. Compared with label-only fine-tuning on the same inputs
at each of `sizes` (shares of the kept inputs, nested), on the task's own items as the held-out
split, as the paper's figure does.

<run>/distill/teacher.jsonl     every input: the teacher's rationale and label, agreement, fate
<run>/distill/step_by_step.jsonl and label_only.jsonl   the training sets at full size (messages)
<run>/distill/model/            the student trained step-by-step on all kept inputs (HF folder)
"""

import hashlib
import json
import random
import time
from collections import Counter
from pathlib import Path

from typing_extensions import TypedDict

from lmforge.chat.encoding import encode
from lmforge.chat.template import CHATML_TEMPLATE
from lmforge.distill.prompts import LABEL, RATIONALE, teacher_prompt
from lmforge.endpoint import EndpointClient, EndpointError
from lmforge.errors import ConfigError
from lmforge.eval import INVALID, engine_replies, evaluate_generative, extract, score, sharded
from lmforge.models import load_model_and_tokenizer, resolve_model_dir, run_model
from lmforge.recipe import DistillConfig
from lmforge.rundir import atomic_write_text, record_stage, write_report_section
from lmforge.rundir.plots import line_plot
from lmforge.sft import train_sft
from lmforge.tasks.spec import build_items, load_task
from lmforge.train.distributed import Dist, barrier, setup_distributed
from lmforge.train.tuning import attach_method

METHODS = {"label": "label only (standard fine-tuning)", "step_by_step": "distilling step-by-step"}


class DistillResult(TypedDict):
    """Rank 0's result; the other processes of a torchrun job return {"worker_rank": rank}."""

    task: str
    inputs: int  # training inputs read
    teacher: dict[str, int]  # answered, agreed, disagreed, and each drop reason
    kept: int  # inputs the student trains on at 100%
    results: list[dict]  # method, share, inputs, accuracy, stderr, steps, final_loss
    model: str
    endpoint: dict


def _cut(text: str, stops: list[str]) -> str:
    """The reply up to the first stop sequence: a teacher that goes on to a next problem is cut."""
    for s in stops:
        if s and s in text:
            text = text[: text.index(s)]
    return text.strip()


def annotate(cfg: DistillConfig, task, train, out: Path, seed: int) -> tuple[list[dict], Counter, dict]:
    """The teacher's rationale and label for every training input; (kept records, counts, accounting)."""
    spec = task.spec
    shots = build_items(train, num_fewshot=cfg.shots, seed=seed)
    plain = build_items(train, num_fewshot=0, seed=seed)
    client = EndpointClient(cfg.endpoint, cache_path=out / "cache.jsonl")
    params = {"temperature": cfg.endpoint.temperature, "max_tokens": cfg.endpoint.max_tokens}
    try:
        replies = client.map(
            lambda it: client.chat([{"role": "user", "content": teacher_prompt(it.context, spec.language)}], **params),
            shots,
            progress="distill: teacher",
        )
        client.check_answered("distill")
    finally:
        client.close()
    counts, records, kept = Counter(), [], []
    for item, student_input, reply in zip(shots, plain, replies):
        record = {"input": student_input.context.strip(), "gold": item.golds[0]}
        if isinstance(reply, EndpointError):
            counts[f"endpoint: {reply.reason}"] += 1
            records.append({**record, "dropped": f"endpoint: {reply.reason}"})
            continue
        if isinstance(reply, Exception):
            raise reply
        counts["answered"] += 1
        rationale = _cut(reply.text, spec.until)
        label = extract(rationale, spec.extract, spec.regex)
        if label == INVALID:
            counts["no answer in the reply"] += 1
            records.append({**record, "rationale": rationale, "dropped": "no answer in the reply"})
            continue
        agrees = score(label, item.golds, spec.normalize, spec.language)["exact_match"] == 1.0
        counts["agreed" if agrees else "disagreed"] += 1
        dropped = None if agrees or cfg.disagreeing == "keep" else "label disagrees with the gold one"
        records.append({**record, "rationale": rationale, "teacher_label": label, "agrees": agrees, "dropped": dropped})
        if dropped is None:
            kept.append(records[-1])
    atomic_write_text(out / "teacher.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return kept, counts, client.accounting()


def conversations(records: list[dict], method: str, weight: float) -> tuple[list[list[dict]], list[float]]:
    """The training conversations of `method` and each one's loss weight."""

    def turn(prompt: str, answer: str) -> list[dict]:
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]

    if method == "label":
        return [turn(r["input"], r["gold"]) for r in records], [1.0] * len(records)
    convs = [turn(LABEL + r["input"], r["gold"]) for r in records]
    convs += [turn(RATIONALE + r["input"], r["rationale"]) for r in records]
    return convs, [1.0] * len(records) + [weight] * len(records)


def train_and_score(
    cfg: DistillConfig, student_dir: Path, task, records: list[dict], method: str, seed: int, d: Dist, resume: Path
):
    """A fresh student tuned on `records` by `method` (every process; a killed run resumes from
    `resume`), then scored on the task's items (under torchrun each process scores its share of
    them, as `eval` does); (row, model, tokenizer)."""
    model, tok = load_model_and_tokenizer(student_dir)
    model.to(d.device)
    if not tok.chat_template:
        tok.chat_template = CHATML_TEMPLATE
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    max_len = cfg.sft.max_len or model.config.max_position_embeddings
    convs, weights = conversations(records, method, cfg.rationale_weight)
    examples = []
    for c in convs:
        ids, labels = encode(tok, c)
        examples.append((ids[:max_len], labels[:max_len]))
    model = attach_method(model, cfg.sft, "distill.sft", seed)
    trained, plain = train_sft(model, examples, cfg.sft, seed, pad, None, resume_dir=resume, d=d, weights=weights)
    if trained["interrupted"]:  # SIGTERM: checkpointed at the step's end; a rerun continues
        return {"interrupted": True}, None, tok
    model = plain if d.is_main else model  # DDP left every process the same trained weights
    if cfg.sft.method == "lora":
        model = model.merge_and_unload()
    model.eval()
    prefix = LABEL if method == "step_by_step" else ""
    spec = task.spec.model_copy(update={"chat": True, "max_new_tokens": cfg.label_tokens, "samples": 1})
    with sharded():  # every process scores its share of the items
        result = evaluate_generative(
            task,
            lambda prompts, idx: engine_replies(model, tok, [prefix + p.strip() for p in prompts], spec, indices=idx),
            num_fewshot=0,
            limit=cfg.limit,
        )
    m = result["metrics"]["exact_match"]
    row = {
        "method": method,
        "inputs": len(records),
        "accuracy": m["value"],
        "stderr": m["stderr"],
        "steps": trained["steps"],
        "final_loss": trained["final_loss"],
    }
    return row, model, tok


def run_distill_stage(cfg: DistillConfig, run_dir: str | Path, seed: int = 0) -> DistillResult:
    """Under torchrun every process runs this: rank 0 asks the teacher (the others then read its
    cached answers), every training is shared, rank 0 scores, saves and records. Each finished
    (method, share) is kept in <run>/distill/runs/, so a rerun of a killed stage continues where
    it stopped (a training cut short resumes from its step checkpoint)."""
    started = time.time()
    run_dir = Path(run_dir)
    d = setup_distributed()
    if not cfg.task or not cfg.train_data:
        raise ConfigError("distill.task and distill.train_data: give the task spec and its training inputs")
    task = load_task(cfg.task)
    if task.spec.output != "generate" or not task.spec.fewshot_target:
        raise ConfigError(
            f"distill.task: {cfg.task} must be a generative task whose few-shot examples have worked "
            'solutions (output = "generate", fewshot_target): they are the teacher\'s demonstrations'
        )
    if any(not 0 < s <= 1 for s in cfg.sizes):
        raise ConfigError(f"distill.sizes: shares of the kept inputs, in (0, 1]; got {cfg.sizes}")
    student_dir = resolve_model_dir(cfg.model) if cfg.model else run_model(run_dir)
    if student_dir is None:
        raise ConfigError(f"distill.model: not set, and {run_dir} has no model")
    train = load_task(cfg.task, data=cfg.train_data)
    out = run_dir / "distill"
    out.mkdir(parents=True, exist_ok=True)
    if not d.is_main:
        barrier(d)  # rank 0 asks the teacher first; here every answer then comes from its cache
    kept, counts, accounting = annotate(cfg, task, train, out, cfg.seed)
    if d.is_main:
        barrier(d)
    if not kept:
        raise ConfigError(f"distill: the teacher agreed on no input ({dict(counts)}); see {out / 'teacher.jsonl'}")
    order = kept[:]
    random.Random(cfg.seed).shuffle(order)
    for method in METHODS:
        convs, _ = conversations(order, method, cfg.rationale_weight)
        atomic_write_text(
            out / f"{method if method != 'label' else 'label_only'}.jsonl",
            "".join(json.dumps({"messages": c}, ensure_ascii=False) + "\n" for c in convs),
        )
    results = []
    fingerprint = hashlib.sha256(json.dumps([order, cfg.model_dump(), str(student_dir)]).encode()).hexdigest()
    for share in sorted(cfg.sizes):
        records = order[: max(1, round(share * len(order)))]
        for method in METHODS:
            done = out / "runs" / f"{method}-{share:g}.json"
            last = share == max(cfg.sizes) and method == "step_by_step"
            if done.is_file() and json.loads(done.read_text())["fingerprint"] == fingerprint:
                results.append(json.loads(done.read_text())["row"])  # finished before a kill: not again
                continue
            row, model, tok = train_and_score(
                cfg, student_dir, task, records, method, seed, d, out / "resume" / f"{method}-{share:g}"
            )
            if row and row.get("interrupted"):
                return {"interrupted": True}
            if d.is_main:
                if last:
                    model.save_pretrained(out / "model", safe_serialization=True)
                    tok.save_pretrained(out / "model")
                results.append({**row, "share": share})
                atomic_write_text(done, json.dumps({"fingerprint": fingerprint, "row": results[-1]}))
            barrier(d)
    if not d.is_main:
        return {"worker_rank": d.rank}
    summary: DistillResult = {
        "task": task.spec.name,
        "inputs": len(train.docs),
        "teacher": dict(counts),
        "kept": len(kept),
        "results": results,
        "model": str(out / "model"),
        "endpoint": accounting,
    }
    plot = _plot(run_dir, results, task.spec.name)
    record_stage(
        run_dir, "distill", cfg.model_dump(), [cfg.task, cfg.train_data, student_dir], cfg.seed, started, summary
    )
    write_report_section(run_dir, "distill", _report(summary, cfg, plot))
    return summary


def _plot(run_dir: Path, results: list[dict], name: str) -> str:
    series = {
        METHODS[m]: ([100 * r["share"] for r in results if r["method"] == m], [r["accuracy"] for r in results if r["method"] == m])
        for m in METHODS
    }  # fmt: skip
    line_plot(
        run_dir / "plots" / "distill.png",
        series,
        "% of training inputs",
        "held-out accuracy",
        f"{name}: distilling step-by-step",
    )
    return "plots/distill.png"


def _report(s: DistillResult, cfg: DistillConfig, plot: str) -> str:
    t, e = s["teacher"], s["endpoint"]
    lines = [
        "## Distilling step-by-step",
        "",
        f"Teacher `{e['model']}` at `{e['endpoint']}` annotated {s['inputs']} training inputs of `{s['task']}` "
        f"({cfg.shots}-shot worked examples): {t.get('answered', 0)} answered, {t.get('agreed', 0)} agreed with the "
        f"gold label, {t.get('disagreed', 0)} disagreed ({'kept' if cfg.disagreeing == 'keep' else 'dropped'})"
        + "".join(f", {k}: {v}" for k, v in t.items() if k not in ("answered", "agreed", "disagreed"))
        + f". The student trains on {s['kept']} inputs at 100%; rationale weight λ = {cfg.rationale_weight}; "
        f"held-out: the task's own items, answered greedily with the `[label]` prefix (no rationale written).",
        "",
        "| inputs (share) | label only | step-by-step |",
        "|---|---:|---:|",
    ]
    for share in sorted({r["share"] for r in s["results"]}):
        row = {r["method"]: r for r in s["results"] if r["share"] == share}
        cells = [f"{row[m]['accuracy']:.3f} ± {row[m]['stderr']:.3f}" for m in METHODS]
        lines.append(f"| {row['label']['inputs']} ({share:.0%}) | " + " | ".join(cells) + " |")
    lines += ["", f"![distill]({plot})", "", f"Student trained step-by-step on all kept inputs: `{s['model']}`."]
    return "\n".join(lines)
