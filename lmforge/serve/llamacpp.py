"""The llama.cpp backend: a GGUF file decoded by llama.cpp (the `xllamacpp` wheel's prebuilt CPU
build), behind lmforge's own API, guardrails and page.

xllamacpp starts llama.cpp's server inside this process on a private 127.0.0.1 port; every
request is forwarded to it as a streamed `/v1/completions` call with the prompt rendered by the
GGUF's own chat template (`/apply-template`) and counted by its tokenizer (`/tokenize`), so usage
and context checks are exact. Cancelling a request closes its stream, which makes llama.cpp free
the slot. llama.cpp batches the slots itself (continuous batching, `--parallel` = max_batch).
"""

import json
import threading
from pathlib import Path

import httpx

from lmforge.engine import QueueFull
from lmforge.errors import ConfigError, LmforgeError


class _Handle:
    def __init__(self):
        self.cancelled = False
        self.response = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.response is not None:
            try:
                self.response.close()
            except Exception:  # noqa: BLE001 - closing a finished stream may fail; nothing to do
                pass


class LlamaCppBackend:
    def __init__(self, ref: str, max_batch: int = 8, max_waiting: int = 64, threads: int | None = None,
                 context_per_slot: int = 2048):
        path = Path(ref)
        if path.suffix != ".gguf" or not path.is_file():
            raise ConfigError(f"{ref}: the llama.cpp backend serves a .gguf file (`lmforge export gguf` makes one)")
        try:
            import xllamacpp
        except ImportError:
            raise ConfigError("the llama.cpp backend needs the xllamacpp wheel: pip install xllamacpp") from None
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = max_batch
        params.n_ctx = context_per_slot * max_batch
        if threads:
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
        self.server = xllamacpp.Server(params)  # keeps llama.cpp's server alive as long as this object
        self.url = self.server.listening_address.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(600, connect=10))
        self.context = context_per_slot
        self.max_batch, self.max_waiting = max_batch, max_waiting
        self.in_flight, self.submitted, self.lock = 0, 0, threading.Lock()

    def chat_prompt(self, messages: list[dict]) -> str:
        r = self.http.post("/apply-template", json={"messages": messages})
        r.raise_for_status()
        return r.json()["prompt"]

    def text_prompt(self, text: str) -> str:
        return text

    def prompt_tokens(self, prompt: str) -> int:
        r = self.http.post("/tokenize", json={"content": prompt, "add_special": True})
        r.raise_for_status()
        return len(r.json()["tokens"])

    def load(self) -> dict:
        return {"running": min(self.in_flight, self.max_batch), "waiting": max(0, self.in_flight - self.max_batch),
                "max_batch": self.max_batch, "submitted": self.submitted}

    def submit(self, prompt: str, params, emit) -> _Handle:
        with self.lock:
            if self.in_flight >= self.max_batch + self.max_waiting:
                raise QueueFull(f"{self.in_flight} requests are already in flight")
            self.in_flight += 1
            self.submitted += 1
        body = {"prompt": prompt, "max_tokens": params.max_tokens, "temperature": params.temperature,
                "top_p": params.top_p, "top_k": params.top_k, "stop": params.stop, "stream": True,
                "stream_options": {"include_usage": True}, "cache_prompt": True}
        if params.seed is not None:
            body["seed"] = params.seed
        handle = _Handle()
        threading.Thread(target=self._run, args=(body, emit, handle), daemon=True).start()
        return handle

    def _run(self, body: dict, emit, handle: _Handle) -> None:
        finish, usage = None, None
        try:
            with self.http.stream("POST", "/v1/completions", json=body) as response:
                handle.response = response
                if response.status_code != 200:
                    response.read()
                    raise LmforgeError(f"llama.cpp answered {response.status_code}: {response.text[:200]}")
                for line in response.iter_lines():
                    if handle.cancelled:
                        break
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        raise LmforgeError(chunk["error"].get("message", str(chunk["error"])))
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        if choice.get("text"):
                            emit(("text", choice["text"]))
                        finish = choice.get("finish_reason") or finish
            if handle.cancelled:
                emit(("done", "cancelled", usage or {}))
            else:
                emit(("done", finish or "stop", {k: usage[k] for k in ("prompt_tokens", "completion_tokens",
                                                                       "total_tokens")}))
        except Exception as e:  # noqa: BLE001 - reported to the request, the server goes on
            emit(("done", "cancelled", usage or {}) if handle.cancelled else ("error", f"{type(e).__name__}: {e}"))
        finally:
            with self.lock:
                self.in_flight -= 1
