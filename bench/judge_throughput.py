"""Judge throughput: `lmforge judge` (single 1-10 grading, English and German) at concurrency 1 and
16 vs a plain sequential loop with the `openai` client sending the same judge prompts, against one
local endpoint with a fixed artificial latency per request.

The endpoint (below, in its own process) answers a question with a short reply in the question's
language and a judge prompt with a rating, after `--latency` seconds. The questions are the
shipped samples that need no reference answer, repeated with new ids to `--questions` per
language. The model's answers are fetched once before timing (they come from the answer cache in
every timed run), so the runs time the judging: judgments/s over the whole stage (reading, language
checks, files, report) for lmforge, over the request loop for the peer. Ideal speed-up at
concurrency c = min(c, judgments); the figure that matters is achieved/ideal (target >= 0.8).

    python bench/judge_throughput.py --questions 80 --latency 0.2
"""

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.judge.parse import parse_rating  # noqa: E402
from lmforge.judge.prompts import single_prompt  # noqa: E402
from lmforge.judge.questions import NEEDS_REFERENCE  # noqa: E402
from lmforge.recipe import EndpointConfig, JudgeConfig  # noqa: E402
from lmforge.samples import sample  # noqa: E402
from tests.fault_endpoint import in_own_process  # noqa: E402

ANSWER = {
    "en": "A short answer that stays on topic and gives two concrete, practical details.",
    "de": "Eine kurze Antwort, die beim Thema bleibt und zwei konkrete, praktische Einzelheiten nennt.",
}


def scripted_endpoint(port: int, latency: float) -> None:
    """Answers and judgments after a fixed delay (a stand-in for a remote model and a remote judge)."""
    import uvicorn
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": "scripted", "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        await asyncio.sleep(latency)
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        question = body["messages"][-1]["content"]
        if "Rating: [[7]]" in system:
            text = f"Clear and on topic. Rating: [[{len(question) % 10 + 1}]]"
        else:
            text = ANSWER["de" if any(c in question for c in "äöüß") or " die " in question else "en"]
        return {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "scripted",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": len(question) // 4,
                "completion_tokens": len(text) // 4,
                "total_tokens": (len(question) + len(text)) // 4,
            },
        }

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def question_files(folder: Path, per_language: int) -> dict[str, str]:
    out = {}
    for lang in ("en", "de"):
        shipped = [json.loads(line) for line in Path(sample(f"judge/{lang}/question.jsonl")).read_text().splitlines()]
        usable = [q for q in shipped if q["category"] not in NEEDS_REFERENCE]
        # each copy asks something new (a number in its first turn): the judge's cache would answer a repeat
        rows = [
            {**q, "question_id": 1000 + i, "turns": [f"{q['turns'][0]} ({i + 1})", *q["turns"][1:]]}
            for i, q in ((i, usable[i % len(usable)]) for i in range(per_language))
        ]
        path = folder / f"{lang}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        out[lang] = str(path)
    return out


def sequential_openai(url: str, questions: dict[str, str]) -> tuple[float, int]:
    """The peer: one judgment after another with the official client, the rating parsed."""
    from openai import OpenAI

    client = OpenAI(base_url=url, api_key="unused", max_retries=0)
    jobs = [
        (lang, json.loads(line), turn)
        for lang, path in questions.items()
        for line in Path(path).read_text().splitlines()
        for turn in (1, 2)
    ]
    start = time.time()
    for lang, q, turn in jobs:
        messages = single_prompt(lang, q["turns"], [ANSWER[lang]] * 2, turn, None)
        reply = client.chat.completions.create(model="scripted", temperature=0, max_tokens=1024, messages=messages)
        assert parse_rating(reply.choices[0].message.content) is not None
    return len(jobs) / (time.time() - start), len(jobs)


def lmforge_judge(url: str, questions: dict[str, str], concurrency: int, answers_cache: Path) -> float:
    from lmforge.judge import run_judge_stage

    with tempfile.TemporaryDirectory() as run:
        out = Path(run) / "judge"
        out.mkdir()
        shutil.copy(answers_cache, out / "answers_cache.jsonl")  # the model's answers, fetched once before
        cfg = JudgeConfig(
            questions=questions,
            references={},
            out=str(out),
            answers_endpoint=EndpointConfig(base_url=url, api_key_env=None, concurrency=16),
            judge=EndpointConfig(base_url=url, api_key_env=None, concurrency=concurrency),
        )
        start = time.time()
        s = run_judge_stage(cfg, run)
        elapsed = time.time() - start
    judged = sum(r["judgments"] for r in s["languages"].values())
    assert judged and not sum(r["failed"] for r in s["languages"].values())
    assert s["endpoint"]["answered_from_cache"] == 0, s["endpoint"]  # every judgment was asked for in this run
    return judged / elapsed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--questions", type=int, default=80, help="per language, two turns each (MT-Bench's size)")
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = p.parse_args()

    from lmforge.judge import run_judge_stage

    server, url = in_own_process(scripted_endpoint, args.latency)
    with tempfile.TemporaryDirectory() as tmp:
        questions = question_files(Path(tmp), args.questions)
        warm = Path(tmp) / "warm"  # fetch the answers once (and the judge's first verdicts, discarded)
        run_judge_stage(
            JudgeConfig(
                questions=questions,
                references={},
                out=str(warm / "judge"),
                answers_endpoint=EndpointConfig(base_url=url, api_key_env=None, concurrency=16),
                judge=EndpointConfig(base_url=url, api_key_env=None, concurrency=16),
            ),
            warm,
        )
        base, jobs = sequential_openai(url, questions)
        print(
            f"sequential openai loop: {base:.2f} judgments/s ({args.latency * 1000:.0f} ms latency, {jobs} "
            f"judgments: {args.questions} questions x 2 turns x 2 languages)"
        )
        for c in args.concurrency:
            rate = lmforge_judge(url, questions, c, warm / "judge" / "answers_cache.jsonl")
            ideal = min(c, jobs)
            print(
                f"lmforge judge, concurrency {c:>2}: {rate:7.2f} judgments/s = {rate / base:5.2f}x the loop; "
                f"ideal {ideal}x; achieved/ideal {rate / base / ideal:.2f} (target >= 0.8)"
            )
    server.terminate()


if __name__ == "__main__":
    main()
