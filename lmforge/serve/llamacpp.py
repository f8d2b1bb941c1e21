"""The llama.cpp backend: a GGUF file decoded by llama.cpp (the `xllamacpp` wheel's prebuilt CPU
build), behind lmforge's own API, guardrails and page.

llama.cpp runs inside this process, reachable by nobody else (engine/llamacpp.py). Requests go to
it without HTTP: its completion handler hands every streamed chunk to a Python callback (one thread
per request, the GIL held only inside the callback); returning True from the callback ends the
request, which frees its slot. Prompts arrive as token ids,
rendered and counted here with the GGUF's own tokenizer and chat template as transformers reads
them, so usage and context checks are exact without a round trip per request; where transformers
cannot read the file's tokenizer, or reads it differently from llama.cpp on a probe conversation,
llama.cpp's `/apply-template` and `/tokenize` endpoints render and count instead. llama.cpp batches
the slots itself (continuous batching, `--parallel` = max_batch).
"""

import threading
import time
from pathlib import Path

import httpx

from lmforge.chat.template import encode_chat, render_chat, template_text
from lmforge.engine.events import Aborted, Done, Failed, Logprobs, Text, TokenLogprob, Usage
from lmforge.engine.llamacpp import LlamaServer
from lmforge.errors import LmforgeError
from lmforge.serve.backends import Handle, Slots

PROBE = [
    {"role": "system", "content": "Antworte kurz, bitte."},
    {"role": "user", "content": "Grüße aus Köln! What's 3.14 × 2? Say it in <b>bold</b> 😀"},
    {"role": "assistant", "content": "6.28, **sechs Komma zwei acht**."},
    {"role": "user", "content": "  And in words?\n\nDanke."},
]


def local_tokenizer(path: Path, http: httpx.Client):
    """transformers' reading of the GGUF's tokenizer with the chat template llama.cpp uses, or None
    when it cannot read them or renders or tokenizes the probe conversation differently."""
    from lmforge.models.gguf import gguf_tokenizer

    try:
        tokenizer = gguf_tokenizer(path)
        tokenizer.chat_template = http.get("/props").json().get("chat_template") or tokenizer.chat_template
        ours = render_chat(tokenizer, PROBE, add_generation_prompt=True)
    except Exception:  # noqa: BLE001 - any failure means: let llama.cpp render and count
        return None
    theirs = http.post("/apply-template", json={"messages": PROBE}).json().get("prompt")
    ids = http.post("/tokenize", json={"content": ours, "add_special": True}).json().get("tokens")
    if ours != theirs or tokenizer(ours, add_special_tokens=True).input_ids != ids:
        return None
    return tokenizer


def _entries(content: list[dict], top: int) -> tuple[TokenLogprob, ...]:
    """llama.cpp's per-token log-probs (chat shape, with token ids) as engine entries."""
    return tuple(
        TokenLogprob(e["id"], e["logprob"], tuple((t["id"], t["logprob"]) for t in e["top_logprobs"][:top]))
        for e in content
    )


class LlamaCppBackend:
    def __init__(
        self,
        ref: str,
        max_batch: int = 8,
        max_waiting: int = 64,
        threads: int | None = None,
        context_per_slot: int = 2048,
        render_here: bool = True,
    ):
        self.llama = LlamaServer(ref, slots=max_batch, context_per_slot=context_per_slot, threads=threads)
        self.http = self.llama.http
        self.tokenizer = local_tokenizer(Path(ref), self.http) if render_here else None
        # llama.cpp gives each generated token's log-prob (from the raw logits, as the torch engine
        # does) but none of a prompt's tokens: `echo` is a 400 naming it. Tokens are named through
        # the local tokenizer, so without one there are no log-probs either.
        self.logprobs = self.tokenizer is not None
        self.echo, self.vocab_size = False, None if self.tokenizer is None else len(self.tokenizer)
        self.context = context_per_slot
        self.slots = Slots(max_batch, max_waiting)

    def chat_prompt(self, messages: list[dict], tools: list | None = None) -> list[int]:
        if self.tokenizer is not None:
            return encode_chat(self.tokenizer, messages, add_generation_prompt=True, tools=tools)
        body = {"messages": messages} | ({"tools": tools} if tools else {})
        return self._tokenize(self._post("/apply-template", body)["prompt"])

    def chat_template(self, tools: list | None = None) -> str:
        if self.tokenizer is not None:
            return template_text(self.tokenizer, tools)
        return self.http.get("/props").json().get("chat_template") or ""

    def continuation(self, text: str) -> list[int]:
        if self.tokenizer is not None:
            return self.tokenizer(text, add_special_tokens=False).input_ids
        return self._post("/tokenize", {"content": text, "add_special": False})["tokens"]

    def text_prompt(self, text: str) -> list[int]:
        if self.tokenizer is not None:
            return self.tokenizer(text, add_special_tokens=True).input_ids
        return self._tokenize(text)

    def prompt_tokens(self, prompt: list[int]) -> int:
        return len(prompt)

    def _tokenize(self, text: str) -> list[int]:
        return self._post("/tokenize", {"content": text, "add_special": True})["tokens"]

    def _post(self, route: str, body: dict) -> dict:
        r = self.http.post(route, json=body)
        if r.status_code != 200:
            raise LmforgeError(f"llama.cpp {route} answered {r.status_code}: {r.text[:200]}")
        return r.json()

    def load(self) -> dict:
        return self.slots.load()

    def submit(self, prompt: list[int], params, emit) -> Handle:
        handle = self.slots.admit(emit)
        body = {
            "prompt": prompt,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k,
            "stop": params.stop,
            "stream": True,
            "stream_options": {"include_usage": True},
            "cache_prompt": True,
        }
        if params.json_schema is not None:  # llama.cpp's own JSON-schema grammar
            body["json_schema"] = params.json_schema
        if params.seed is not None:
            body["seed"] = params.seed % 0xFFFFFFFF  # llama.cpp's seeds are 32-bit; 0xFFFFFFFF means "random"
        if params.logprobs is not None:  # at least one alternative, or llama.cpp sends none at all
            body["logprobs"], body["post_sampling_probs"] = max(1, params.logprobs), False
        threading.Thread(target=self._run, args=(body, handle, params.logprobs), daemon=True).start()
        return handle

    def abort_all(self, message: str) -> None:
        for handle in self.slots.stop(message):
            handle.end(Aborted(message))  # llama.cpp stops each at its next chunk

    def close(self, timeout: float = 5.0) -> None:
        """Abort everything, wait for llama.cpp to hand back every request, then stop it. A request
        still inside llama.cpp after `timeout` keeps the server object alive rather than freeing
        memory under its feet."""
        self.abort_all("the server is shutting down")
        end = time.monotonic() + timeout
        while self.slots.in_flight and time.monotonic() < end:
            time.sleep(0.02)
        self.llama.close(stop_llama=not self.slots.in_flight)

    def _run(self, body: dict, handle: Handle, top: int | None) -> None:
        state = {"finish": None, "usage": None, "error": None}

        def on_chunk(chunk: dict) -> bool:
            """llama.cpp's streamed chunks (or its error object); True ends the request."""
            if handle.cancelled or handle.ended:
                return True
            if "choices" not in chunk and "usage" not in chunk:  # llama.cpp's error object
                error = chunk.get("error", chunk)
                state["error"] = error.get("message", str(error)) if isinstance(error, dict) else str(error)
                return True
            state["usage"] = chunk.get("usage") or state["usage"]
            for choice in chunk.get("choices") or []:
                if top is not None and choice.get("logprobs"):
                    handle.emit(Logprobs(_entries(choice["logprobs"]["content"], top)))
                if choice.get("text"):
                    handle.emit(Text(choice["text"]))
                state["finish"] = choice.get("finish_reason") or state["finish"]
            return False

        try:
            if body["max_tokens"] == 0:  # an echoed prompt and nothing more (llama.cpp reads 0 as "no limit")
                handle.end(Done("length", Usage(len(body["prompt"]), 0)))
                return
            self.llama.handle_completions(body, on_chunk)
            usage = state["usage"] or {}
            counted = Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
            if handle.cancelled:
                handle.end(Done("cancelled", counted))
            elif state["error"] is not None:
                handle.end(Failed(f"llama.cpp: {state['error']}"))
            else:
                handle.end(Done(state["finish"] or "stop", counted))
        except Exception as e:  # noqa: BLE001 - reported to the request, the server goes on
            handle.end(Failed(f"{type(e).__name__}: {e}"))
        finally:
            self.slots.release(handle)
