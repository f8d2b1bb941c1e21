"""Generative tasks: the model writes a reply, an answer is extracted and compared (eval/answers.py).

Replies come from the shared decode engine, every item of a task in one continuously batched run
(a 500-item task does not decode one prompt at a time), or from any OpenAI-compatible endpoint
through the shared client (`/completions`, `concurrency` at a time), so a served or external
model is scored the same way. Greedy by default; with `temperature` > 0 and `samples` = n each
item is answered n times (seeds seed + i*n + j), which gives pass@n (any answer right), maj@n (the
most common answer right) and pass@1 (the mean over the n). Prompts are encoded as the
log-likelihood scorer encodes a context (eval/loglikelihood.py), left-truncated to leave room for
`max_new_tokens`, as lm-evaluation-harness's `generate_until` does.
"""

from collections import Counter

from lmforge.chat.template import encode_chat
from lmforge.engine import Engine, GenerationError, SamplingParams
from lmforge.engine.events import Failed, Text
from lmforge.eval.answers import INVALID, extract, normalise, score
from lmforge.eval.multiple_choice import result_header, stderr
from lmforge.eval.shard import shard_map
from lmforge.tasks import Task, build_items


def engine_replies(
    model,
    tokenizer,
    prompts: list[str],
    spec,
    seed: int = 0,
    batch_size: int = 16,
    indices: list[int] | None = None,
    prefix_cache_mb: int = 1024,
) -> list[list[str]]:
    """`spec.samples` replies per prompt from lmforge's engine, stopped at `spec.until`. `indices`:
    each prompt's place in its task (the sampling seeds follow it, so a share of the items on one
    process samples what one process would). Prompts sharing few-shot examples prefill only what
    differs (the engine's prefix cache, `prefix_cache_mb`; 0 turns it off)."""
    indices = list(range(len(prompts))) if indices is None else indices
    n = spec.samples
    engine = Engine(
        model, tokenizer, batch_size, max_waiting=len(prompts) * n, start=False, prefix_cache_mb=prefix_cache_mb
    )
    if not spec.chat:  # a continuation, not a chat turn: only EOS ends it
        engine.stops = {tokenizer.eos_token_id} - {None}
    room = engine.context - spec.max_new_tokens
    texts = [[[] for _ in range(n)] for _ in prompts]
    failed = []

    def emitter(i: int, j: int):
        def emit(ev) -> None:
            if isinstance(ev, Text):
                texts[i][j].append(ev.piece)
            elif isinstance(ev, Failed):
                failed.append(ev.message)

        return emit

    for i, prompt in enumerate(prompts):
        ids = (
            encode_chat(tokenizer, [{"role": "user", "content": prompt}], True)
            if spec.chat
            else tokenizer.encode(prompt)
        )
        ids = ids[-room:] if room > 0 else ids
        for j in range(n):
            params = SamplingParams(
                max_tokens=spec.max_new_tokens,
                temperature=spec.temperature,
                top_k=0,
                top_p=1.0,
                seed=seed + indices[i] * n + j,
                stop=list(spec.until),
            )
            engine.submit(ids, params, emitter(i, j))
    while engine.running or engine.waiting:
        engine.run_once()
    if failed:
        raise GenerationError(f"generation failed: {failed[0]}")
    return [["".join(pieces) for pieces in row] for row in texts]


def endpoint_replies(
    client, prompts: list[str], spec, seed: int = 0, indices: list[int] | None = None
) -> list[list[str]]:
    """The same through an OpenAI-compatible `/completions` endpoint (the shared client: retries,
    cache, `concurrency` requests at a time)."""
    n = spec.samples
    indices = list(range(len(prompts))) if indices is None else indices
    jobs = [(i, j) for i in range(len(prompts)) for j in range(n)]

    def ask(job: tuple[int, int]) -> str:
        i, j = job
        params = {
            "max_tokens": spec.max_new_tokens,
            "temperature": spec.temperature,
            "seed": seed + indices[i] * n + j,
            "stop": list(spec.until)[:4] or None,  # the OpenAI API takes at most four
        }
        if spec.chat:
            return client.chat([{"role": "user", "content": prompts[i]}], **params).text
        return client.complete(prompts[i], **params).text

    flat = client.map(ask, jobs, progress="generating")
    failed = [r for r in flat if isinstance(r, Exception)]
    if failed:  # a reply that never came is not a wrong answer: the score would be made up
        raise GenerationError(f"{len(failed)} of {len(flat)} requests failed for good; first: {failed[0]}")
    return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]


def evaluate_generative(
    task: Task, replies_for, num_fewshot: int | None = None, seed: int = 1234, limit: int | None = None
) -> dict:
    """Score a generative task; `replies_for(prompts, indices)` returns each prompt's samples. The result has
    the shape of a multiple-choice task's (metrics with standard errors, per-item values for the
    bootstrap), plus each item's replies and extracted answers."""
    spec = task.spec
    items = build_items(task, num_fewshot, seed, limit)
    replies = _replies(replies_for, [it.context for it in items])
    answers = [[extract(r, spec.extract, spec.regex) for r in row] for row in replies]
    scored = [[score(a, it.golds, spec.normalize, spec.language) for a in row] for it, row in zip(items, answers)]
    per_item = {m: [sum(s[m] for s in row) / len(row) for row in scored] for m in spec.metrics}
    result = {
        **result_header(task, len(items), num_fewshot),
        "chance": 0.0,
        "metrics": {m: {"value": sum(v) / len(v), "stderr": stderr(v)} for m, v in per_item.items()},
        "per_item": per_item,
        "replies": replies,
        "answers": answers,
        "invalid": sum(a == INVALID for row in answers for a in row),
    }
    if spec.samples > 1:
        n = spec.samples
        any_right = [float(any(s["exact_match"] for s in row)) for row in scored]
        majority = [
            score(_most_common(row, spec), it.golds, spec.normalize, spec.language)["exact_match"]
            for it, row in zip(items, answers)
        ]
        for name, values in ((f"pass@{n}", any_right), (f"maj@{n}", majority)):
            result["metrics"][name] = {"value": sum(values) / len(values), "stderr": stderr(values)}
            result["per_item"][name] = values
    return result


def evaluate_instructions(task: Task, replies_for, limit: int | None = None) -> dict:
    """An instruction-following task (eval/instructions.py): prompt- and instruction-level accuracy,
    strict and loose, as IFEval defines them; per item, the prompt-level values (for the bootstrap)."""
    from lmforge.eval.instructions import score_reply

    spec = task.spec
    items = build_items(task, 0, 0, limit)
    docs = task.docs[: len(items)]
    replies = _replies(replies_for, [it.context for it in items])
    checked = [score_reply(row[0], doc[spec.instructions]) for row, doc in zip(replies, docs)]
    per_prompt = {f"prompt_{k}": [float(all(c[k])) for c in checked] for k in ("strict", "loose")}
    flat = {f"instruction_{k}": [float(v) for c in checked for v in c[k]] for k in ("strict", "loose")}
    metrics = {}
    for name, values in (per_prompt | flat).items():
        if name in spec.metrics:
            metrics[name] = {"value": sum(values) / len(values), "stderr": stderr(values)}
    return {
        "task": spec.name,
        "benchmark": task.benchmark,
        "language": spec.language,
        "items": len(items),
        "num_fewshot": 0,
        "chance": 0.0,
        "metrics": metrics,
        "per_item": {m: v for m, v in per_prompt.items() if m in spec.metrics},
        "replies": replies,
        "followed": [{"strict": c["strict"], "loose": c["loose"]} for c in checked],
    }


def _replies(replies_for, prompts: list[str]) -> list[list[str]]:
    """Every prompt's replies; under torchrun each process answers its share (shard.py)."""
    return shard_map(lambda part: replies_for([p for _, p in part], [i for i, _ in part]), list(enumerate(prompts)))


def _most_common(answers: list[str], spec) -> str:
    """The answer given most often once normalised ("1.000" and "1000" are one vote in German);
    invalid ones only when nothing else was given; ties: the first given."""
    valid = [normalise(a, spec.normalize, spec.language) for a in answers if a != INVALID]
    return Counter(valid).most_common(1)[0][0] if valid else INVALID
