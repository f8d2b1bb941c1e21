"""What the server decodes with. The backends (torch, llama.cpp, vllm: serve/llamacpp.py,
serve/upstream.py) take the same calls, so the API, the guardrails and the page sit in front of any:

    context                      the model's context length in tokens
    chat_prompt(messages, tools) the conversation rendered with the model's own chat template
    chat_template(tools)         that template's text (it says how the model writes tool calls)
    continuation(text)           token ids of text that continues a prompt (no BOS)
    text_prompt(text)            a plain completion prompt
    prompt_tokens(prompt)        its length in tokens (for usage and context checks)
    submit(prompt, params, emit) start decoding; `emit` gets the engine's events (Text pieces, then
                                 Done, Failed or Aborted); returns a handle with cancel()
    abort_all(message)           end every request with Aborted(message) and refuse new ones
    close()                      free the model (after abort_all; the server is stopping)
    load()                       running / waiting counts for /health
    logprobs                     whether it gives generated tokens' log-probabilities
    echo                         whether it scores a prompt's tokens too (`echo`)
    vocab_size                   token ids a prompt may hold (None: the backend checks)
"""

import threading

from lmforge.chat.template import encode_chat, template_text
from lmforge.engine import Engine, QueueFull
from lmforge.engine.batch import ShuttingDown


class Handle:
    """One request of a backend that decodes elsewhere (llama.cpp, an upstream server): cancelled by
    its client, or ended (once) by the backend or the server."""

    def __init__(self, emit):
        self.emit, self.cancelled, self.ended = emit, False, False
        self.lock = threading.Lock()

    def cancel(self) -> None:
        self.cancelled = True  # the backend ends the request at its next chunk

    def end(self, event) -> None:
        with self.lock:
            if self.ended:
                return
            self.ended = True
        self.emit(event)


class Slots:
    """The requests in flight of a backend that decodes elsewhere and batches by itself: admission
    (429 past max_batch + max_waiting, refused once stopping), counts for /health, and who to end
    when the server stops. A cancelled request may still sit in the other engine's queue until it
    ends: it holds no place against live ones."""

    def __init__(self, max_batch: int, max_waiting: int):
        self.max_batch, self.max_waiting = max_batch, max_waiting
        self.in_flight, self.submitted, self.lock = 0, 0, threading.Lock()
        self.live: set[Handle] = set()
        self.stopping: str | None = None

    def admit(self, emit) -> Handle:
        handle = Handle(emit)
        with self.lock:
            if self.stopping:
                raise ShuttingDown(self.stopping)
            live = sum(not h.cancelled for h in self.live)
            if live >= self.max_batch + self.max_waiting:
                raise QueueFull(f"{live} requests are already in flight")
            self.in_flight += 1
            self.submitted += 1
            self.live.add(handle)
        return handle

    def release(self, handle: Handle) -> None:
        with self.lock:
            self.in_flight -= 1
            self.live.discard(handle)

    def stop(self, message: str) -> list[Handle]:
        """Refuse new requests; the ones in flight, for the caller to end."""
        with self.lock:
            self.stopping = message
            return list(self.live)

    def load(self) -> dict:
        return {
            "running": min(self.in_flight, self.max_batch),
            "waiting": max(0, self.in_flight - self.max_batch),
            "max_batch": self.max_batch,
            "submitted": self.submitted,
        }


class LocalPrompts:
    """Prompts rendered and counted with the model's own tokenizer (`self.tokenizer`), here."""

    def chat_prompt(self, messages: list[dict], tools: list | None = None) -> list[int]:
        return encode_chat(self.tokenizer, messages, add_generation_prompt=True, tools=tools)

    def chat_template(self, tools: list | None = None) -> str:
        return template_text(self.tokenizer, tools)

    def continuation(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def text_prompt(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=True).input_ids

    def prompt_tokens(self, prompt: list[int]) -> int:
        return len(prompt)


class TorchBackend(LocalPrompts):
    """lmforge's own decode engine over any model the loader resolves."""

    def __init__(self, model, tokenizer, max_batch: int = 8, max_waiting: int = 64, prefix_cache_mb: int = 1024):
        self.engine = Engine(model, tokenizer, max_batch, max_waiting, prefix_cache_mb=prefix_cache_mb)
        self.tokenizer, self.context = tokenizer, self.engine.context
        self.logprobs = self.echo = True  # token log-probs; a prompt's too (echo)
        self.vocab_size = len(tokenizer)  # token log-probs (and echo); ids a prompt may hold

    def submit(self, prompt, params, emit):
        return self.engine.submit(prompt, params, emit)

    def abort_all(self, message: str) -> None:
        self.engine.abort_all(message)

    def close(self) -> None:
        self.engine.close()

    def load(self) -> dict:
        return self.engine.load()
