"""Translate throughput: `lmforge translate` at concurrency 1, 8 and 32 vs a plain sequential loop
with the `openai` client, against one local endpoint with a fixed artificial latency per request.

The endpoint (tests/fault_endpoint.py, no faults triggered, in its own process) answers every request after
`--latency` seconds with a valid German "translation", so the time is the latency and each
client's own overhead. The ideal speed-up at concurrency c is min(c, records): the figure that
matters is the achieved speed-up over the sequential loop divided by that ideal (target >= 0.8).

    python bench/translate_throughput.py --records 64 --latency 0.2
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.recipe import EndpointConfig, TranslateConfig  # noqa: E402
from lmforge.translate import run_translate_stage  # noqa: E402
from lmforge.translate.record import system_prompt  # noqa: E402
from tests.fault_endpoint import FaultEndpoint, in_own_process  # noqa: E402


def serve_endpoint(port: int, latency: float) -> None:
    """The endpoint in its own process, as a real one would be (not sharing the client's GIL)."""
    import uvicorn

    uvicorn.run(FaultEndpoint(latency_s=latency).app, host="127.0.0.1", port=port, log_level="warning")


def records(n: int) -> list[dict]:
    return [
        {
            "instruction": f"Describe street number {i} of the old town, its houses and the people who live there.",
            "input": "",
            "output": "It is a quiet street with small houses, a bakery and a school at the end.",
        }
        for i in range(n)
    ]


def sequential_openai(url: str, rows: list[dict]) -> float:
    """The peer: one request after another with the official client, reply parsed as JSON."""
    from openai import OpenAI

    client = OpenAI(base_url=url, api_key="unused", max_retries=0)
    start = time.time()
    for r in rows:
        payload = {"1": r["instruction"], "2": r["output"]}
        reply = client.chat.completions.create(
            model="fake",
            temperature=0,
            messages=[
                {"role": "system", "content": system_prompt("en", "de")},
                {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
            ],
        )
        json.loads(reply.choices[0].message.content)
    return len(rows) / (time.time() - start)


def lmforge_translate(url: str, path: Path, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as run:
        cfg = TranslateConfig(
            inputs=[str(path)],
            endpoint=EndpointConfig(base_url=url, model="fake", api_key_env=None, concurrency=concurrency),
        )
        start = time.time()
        s = run_translate_stage(cfg, run)
        elapsed = time.time() - start
        assert s["translated"] == s["read"], s["files"][0]["reasons"]
    return s["read"] / elapsed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    args = p.parse_args()

    server, url = in_own_process(serve_endpoint, args.latency)
    rows = records(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alpaca_en.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        base = sequential_openai(url, rows)
        print(
            f"sequential openai loop: {base:.2f} records/s ({args.latency * 1000:.0f} ms latency, "
            f"{args.records} records)"
        )
        for c in args.concurrency:
            rate = lmforge_translate(url, path, c)
            ideal = min(c, args.records)
            print(
                f"lmforge translate, concurrency {c:>2}: {rate:7.2f} records/s = {rate / base:5.2f}x the loop; "
                f"ideal {ideal}x; achieved/ideal {rate / base / ideal:.2f} (target >= 0.8)"
            )
    server.terminate()


if __name__ == "__main__":
    main()
