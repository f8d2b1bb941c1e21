"""A backend that decodes on another OpenAI-compatible server this process owns (vLLM, serve/vllm.py).

lmforge keeps the front: the API key, guardrails, page, metrics, request checks, tool calls and
the chat template. Prompts are rendered and counted here with the model folder's own tokenizer and
go upstream as token ids on `/v1/completions`, so usage and context checks are exact and the
upstream never renders a template of its own. Each request is one upstream request on its own
thread: streamed, its chunks become engine events; a client that leaves closes the upstream
stream, which aborts the request there (vLLM frees its slot). Log-probabilities ask for token ids
(`return_tokens_as_token_ids`, a vLLM extension lmforge serve honours too), so they map back to
the tokenizer exactly; an `echo` request is answered whole, its entries split at the prompt's
length. JSON constraints go up as `response_format` and are enforced by the upstream's own
structured-output engine.
"""

import json
import threading

import httpx

from lmforge.engine.events import Aborted, Done, Failed, Logprobs, Text, TokenLogprob, Usage
from lmforge.serve.backends import Handle, LocalPrompts, Slots


def _entries(lp: dict | None, start: int = 0, stop: int | None = None) -> tuple[TokenLogprob, ...]:
    """The legacy log-prob lists (tokens as `token_id:N`) as engine entries; top-k sorted, best first
    (vLLM adds the sampled token to the top when it is not among them)."""
    if not lp:
        return ()
    out = []
    tokens = lp["tokens"][start:stop]
    for k, token in enumerate(tokens, start):
        top = sorted(((int(t.split(":")[1]), v) for t, v in (lp["top_logprobs"][k] or {}).items()), key=lambda x: -x[1])
        out.append(TokenLogprob(int(token.split(":")[1]), lp["token_logprobs"][k], tuple(top)))
    return tuple(out)


def _trim_top(entries: tuple[TokenLogprob, ...], k: int) -> tuple[TokenLogprob, ...]:
    return tuple(TokenLogprob(e.token, e.logprob, e.top[:k] if e.logprob is not None else ()) for e in entries)


class UpstreamBackend(LocalPrompts):
    def __init__(
        self,
        http: httpx.Client,
        model: str,
        tokenizer,
        context: int,
        max_batch: int = 8,
        max_waiting: int = 64,
        on_close=None,
    ):
        self.http, self.model, self.tokenizer, self.context = http, model, tokenizer, context
        self.logprobs = self.echo = True  # token log-probs; a prompt's too (echo)
        self.vocab_size = len(tokenizer)
        self.slots, self.on_close = Slots(max_batch, max_waiting), on_close

    def load(self) -> dict:
        return self.slots.load()

    def submit(self, prompt: list[int], params, emit) -> Handle:
        handle = self.slots.admit(emit)
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stop": params.stop or None,
            "seed": params.seed,
            "stream": not params.echo,
            "return_tokens_as_token_ids": True,
        }
        if not params.echo:
            body["stream_options"] = {"include_usage": True}
        if params.logprobs is not None:
            body["logprobs"] = params.logprobs
        if params.echo:
            body["echo"] = True
        if params.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": params.json_schema},
            }
        threading.Thread(target=self._run, args=(body, params, handle), daemon=True).start()
        return handle

    def abort_all(self, message: str) -> None:
        for handle in self.slots.stop(message):
            handle.cancel()
            handle.end(Aborted(message))

    def close(self) -> None:
        self.abort_all("the server is shutting down")
        self.http.close()
        if self.on_close is not None:
            self.on_close()

    def _run(self, body: dict, params, handle: Handle) -> None:
        try:
            if body["stream"]:
                self._stream(body, params, handle)
            else:
                self._whole(body, params, handle)
        except httpx.HTTPError as e:
            handle.end(Failed(f"upstream: {type(e).__name__}: {e}"))
        except Exception as e:  # noqa: BLE001 - reported to the request, the server goes on
            handle.end(Failed(f"{type(e).__name__}: {e}"))
        finally:
            self.slots.release(handle)

    def _stream(self, body: dict, params, handle: Handle) -> None:
        finish, usage = None, {}
        with self.http.stream("POST", "/v1/completions", json=body) as r:
            if r.status_code != 200:
                handle.end(Failed(f"upstream answered {r.status_code}: {r.read().decode(errors='replace')[:300]}"))
                return
            for line in r.iter_lines():
                if handle.cancelled:
                    break  # closing the stream aborts the request upstream
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    handle.end(Failed(f"upstream: {chunk['error'].get('message', chunk['error'])}"))
                    return
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    entries = _entries(choice.get("logprobs"))
                    if entries and params.logprobs is not None:
                        handle.emit(Logprobs(_trim_top(entries, params.logprobs)))
                    if choice.get("text"):
                        handle.emit(Text(choice["text"]))
                    finish = choice.get("finish_reason") or finish
        counted = Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
        handle.end(Done("cancelled" if handle.cancelled else finish or "stop", counted))

    def _whole(self, body: dict, params, handle: Handle) -> None:
        """An echo request: the prompt's entries, then the reply's, split at the prompt's length."""
        r = self.http.post("/v1/completions", json=body)
        if r.status_code != 200:
            handle.end(Failed(f"upstream answered {r.status_code}: {r.text[:300]}"))
            return
        answer = r.json()
        choice, usage = answer["choices"][0], answer.get("usage") or {}
        n, lp, k = len(body["prompt"]), choice.get("logprobs"), params.logprobs or 0
        if params.logprobs is not None:
            handle.emit(Logprobs(_trim_top(_entries(lp, 0, n), k), prompt=True))
            generated = _entries(lp, n)
            if generated:
                handle.emit(Logprobs(_trim_top(generated, k)))
        ids = [int(t.split(":")[1]) for t in lp["tokens"][n:]] if lp else []
        echoed = self.tokenizer.decode(body["prompt"])
        text = choice["text"][len(echoed) :] if choice["text"].startswith(echoed) else self.tokenizer.decode(ids)
        if text:
            handle.emit(Text(text))
        counted = Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
        handle.end(Done(choice.get("finish_reason") or "stop", counted))
