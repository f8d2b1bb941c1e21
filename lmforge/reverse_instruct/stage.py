"""`lmforge reverse-instruct`: instructions for existing documents (LongForm's reverse
instructions, Köksal et al., 2023). An endpoint reads each sampled document and writes the request
it would answer; the pair (request, document as the answer) goes through named filters and comes
out as Alpaca JSONL for `sft`. The outputs are real human text, in any language the documents are
in, so the set teaches long, natural answers that Self-Instruct's generated outputs do not.

Filters, each counted under its reason: document too short or too long (before any request),
endpoint failure, empty request, request too short or too long, request in another language than
its document, request copying the document (a run of `max_copied_words` words taken from it), and
request too similar to one already kept (ROUGE-L, as Self-Instruct keeps its pool novel).
"""

import json
import random
import time
from collections import Counter
from pathlib import Path

from typing_extensions import TypedDict

from lmforge.data import iter_records
from lmforge.endpoint import EndpointClient, EndpointError
from lmforge.errors import ConfigError, DataError
from lmforge.recipe import ReverseInstructConfig
from lmforge.reverse_instruct.prompts import STYLES, clean_reply, length_hint, reverse_prompt
from lmforge.rundir import atomic_write_text, record_stage, write_report_section
from lmforge.self_instruct import rouge_l, words
from lmforge.text import identify


class ReverseInstructResult(TypedDict):
    output: str
    documents: int  # read from the inputs
    sampled: int  # asked about
    kept: int
    dropped: dict[str, int]  # reason -> documents
    styles: dict[str, int]  # of the kept pairs
    languages: dict[str, int]
    endpoint: dict


def _documents(cfg: ReverseInstructConfig) -> list[dict]:
    """Every input document with its language: its record's (`language`, or `metadata.language` as
    `curate` and datatrove write it), else identified."""
    docs = []
    for record, where in iter_records(cfg.inputs):
        text = record.get(cfg.text_field)
        if not isinstance(text, str):
            raise DataError(f"{where}: no string field '{cfg.text_field}' (reverse_instruct.text_field)")
        meta = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
        language = record.get("language") or record.get("lang") or meta.get("language") or identify(text)[0]
        if cfg.languages and language not in cfg.languages:
            continue
        docs.append({"text": text.strip(), "language": language, "where": where})
    return docs


def longest_shared_run(a: list[str], b: list[str]) -> int:
    """The longest run of consecutive words `a` shares with `b` (dynamic programming over a, b)."""
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                cur[j + 1] = prev[j] + 1
                best = max(best, cur[j + 1])
        prev = cur
    return best


def request_problem(request: str, doc: dict, pool: list[list[str]], cfg: ReverseInstructConfig) -> str | None:
    n = len(request.split())
    if not n:
        return "empty request"
    if n < cfg.min_words:
        return "request too short"
    if n > cfg.max_words:
        return "request too long"
    lang, score = identify(request)
    if lang != doc["language"] and score >= 0.5:
        return "request in another language"
    tokens = words(request)
    if longest_shared_run(tokens, words(doc["text"])) >= cfg.max_copied_words:
        return "request copies the document"
    if any(rouge_l(tokens, p) > cfg.max_similarity for p in pool):
        return "too similar (ROUGE-L)"
    return None


def run_reverse_instruct_stage(cfg: ReverseInstructConfig, run_dir: str | Path) -> ReverseInstructResult:
    started = time.time()
    run_dir = Path(run_dir)
    if not cfg.inputs:
        raise ConfigError("reverse_instruct.inputs: give the documents (files or folders, e.g. {run}/curate/data/de)")
    docs = _documents(cfg)
    if not docs:
        raise DataError(f"reverse_instruct.inputs: no documents in {cfg.languages or 'any language'}")
    out = Path(cfg.out) if cfg.out else run_dir / "reverse_instruct"
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg.seed)
    sample = rng.sample(docs, min(cfg.limit, len(docs)))
    dropped: Counter = Counter()
    asked = []
    for doc in sample:
        n = len(doc["text"].split())
        if n < cfg.min_doc_words or n > cfg.max_doc_words:
            dropped["document too short" if n < cfg.min_doc_words else "document too long"] += 1
        else:
            asked.append({**doc, "style": rng.choice(STYLES)})
    client = EndpointClient(cfg.endpoint, cache_path=out / "cache.jsonl")
    params = {"temperature": cfg.endpoint.temperature, "max_tokens": cfg.endpoint.max_tokens}
    try:
        replies = client.map(
            lambda d: client.chat(
                [{"role": "user", "content": reverse_prompt(d["text"], d["language"], d["style"])}], **params
            ),
            asked,
            progress="reverse-instruct",
        )
        if asked:
            client.check_answered("reverse-instruct")
    finally:
        client.close()
    records, candidates, pool = [], [], []
    for doc, reply in zip(asked, replies):
        if isinstance(reply, EndpointError):
            dropped[f"endpoint: {reply.reason}"] += 1
            continue
        if isinstance(reply, Exception):
            raise reply
        request = clean_reply(reply.text)
        reason = request_problem(request, doc, pool, cfg)
        candidates.append({"request": request, "style": doc["style"], "where": doc["where"], "dropped": reason})
        if reason:
            dropped[reason] += 1
            continue
        pool.append(words(request))
        hint = length_hint(doc["text"], doc["language"]) if cfg.length_hint and doc["style"] != "query" else ""
        records.append(
            {
                "instruction": request + hint,
                "input": "",
                "output": doc["text"],
                "language": doc["language"],
                "style": doc["style"],
                "source": doc["where"],
            }
        )
    atomic_write_text(out / "instructions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    atomic_write_text(out / "candidates.jsonl", "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in candidates))
    summary: ReverseInstructResult = {
        "output": str(out / "instructions.jsonl"),
        "documents": len(docs),
        "sampled": len(sample),
        "kept": len(records),
        "dropped": dict(dropped),
        "styles": dict(Counter(r["style"] for r in records)),
        "languages": dict(Counter(r["language"] for r in records)),
        "endpoint": client.accounting(),
    }
    record_stage(run_dir, "reverse_instruct", cfg.model_dump(), list(cfg.inputs), cfg.seed, started, summary)
    write_report_section(run_dir, "reverse_instruct", _report(summary))
    return summary


def _report(s: ReverseInstructResult) -> str:
    e = s["endpoint"]
    lines = [
        "## Reverse instructions (LongForm)",
        "",
        f"{s['sampled']:,} of {s['documents']:,} documents sampled; `{e['model']}` at `{e['endpoint']}` wrote "
        f"the request each answers; {s['kept']:,} pairs kept in `{Path(s['output']).name}` (Alpaca JSONL, "
        "the document as the output, ready for `sft`).",
        "",
        "Styles kept: " + (", ".join(f"{k} {v}" for k, v in s["styles"].items()) or "none")
        + "; languages: " + (", ".join(f"{k} {v}" for k, v in s["languages"].items()) or "none") + ".",
        "",
        "| dropped because | documents |",
        "|---|---:|",
    ]  # fmt: skip
    lines += [f"| {k} | {v} |" for k, v in sorted(s["dropped"].items(), key=lambda kv: -kv[1])] or ["| – | 0 |"]
    lines += [
        "",
        f"Endpoint: {e['requests']:,} requests, {e['answered_from_cache']:,} from the cache, {e['retries']:,} "
        f"retries, failures {e['failures'] or 'none'}.",
    ]
    return "\n".join(lines)
