"""Chat and text completions against any OpenAI-compatible endpoint, many at a time.

Built on `httpx` rather than the `openai` client so that retries, `Retry-After`, the cache and the
accounting are one visible loop: 429, 5xx, timeouts and connection errors are retried with
exponential backoff and full jitter (honouring `Retry-After` when the server sends one); other 4xx
fail at once with the server's message (401 names the key's environment variable). The API key is
read from an environment variable and never written anywhere.

Replies are streamed by default, so `timeout_s` bounds the silence between two chunks rather than
the whole answer: a long answer from a slow local model does not time out while tokens flow, and a
client that does give up closes its connection, which frees the server's slot (`lmforge serve`
cancels the generation). A timed-out request is retried only after at least half its backoff: the
server may still be busy with it, and an immediate retry only piles more work on.
"""

import functools
import json
import os
import random
import ssl
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import certifi
import httpx

from lmforge.endpoint.cache import AnswerCache, request_key
from lmforge.errors import LmforgeError

RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}


class _BrokenStream(Exception):
    """A stream that carried an error event or ended before its last chunk (retried)."""


class EndpointError(LmforgeError):
    """A request that failed for good (after retries, or at once for a client error)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Reply:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    logprobs: dict | None = None  # a text completion's legacy log-probs, when asked (`score`)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client of the process: building one reads the CA bundle (~50 ms),
    and a stage opens a client per endpoint."""
    cafile = os.environ.get("SSL_CERT_FILE") or (None if os.environ.get("SSL_CERT_DIR") else certifi.where())
    return ssl.create_default_context(cafile=cafile, capath=os.environ.get("SSL_CERT_DIR"))  # as httpx does


class EndpointClient:
    def __init__(self, cfg, cache_path=None, sleep=time.sleep):
        """`cfg`: an EndpointConfig (base_url, model, api_key_env, concurrency, timeout_s, max_retries,
        backoff_s, max_backoff_s, price_per_1k_prompt/completion). Without a `model`, the endpoint's
        only model is asked for (`self.cfg.model` then names it)."""
        key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(
            base_url=cfg.base_url.rstrip("/"),
            headers=headers,
            verify=_tls(),
            timeout=httpx.Timeout(cfg.timeout_s, connect=min(10.0, cfg.timeout_s)),
            limits=httpx.Limits(max_connections=cfg.concurrency),
        )
        self.cfg = cfg if cfg.model else cfg.model_copy(update={"model": self._only_model(cfg)})
        self.cache = AnswerCache(cache_path)
        self.sleep = sleep
        self.lock = threading.Lock()
        self.stats = Counter()
        self.failures = Counter()
        self.first_error: str | None = None

    def _only_model(self, cfg) -> str:
        """The one model `GET /models` lists; with none or several, a one-line error asking for one."""
        try:
            r = self.http.get("/models")
            names = [m["id"] for m in r.json()["data"]] if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            names = None
        if names is None:
            raise EndpointError(
                f"{cfg.base_url}: no model named and its /models list could not be read; name the "
                "model (--model, or endpoint.model in the recipe)",
                "no model",
            )
        if len(names) != 1:
            listed = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
            raise EndpointError(
                f"{cfg.base_url}: no model named, and it serves {len(names)} ({listed}); name one "
                "(--model, or endpoint.model in the recipe)",
                "no model",
            )
        return names[0]

    # ---- one request ---------------------------------------------------------------------------

    def chat(self, messages: list[dict], **params) -> Reply:
        return self._ask("/chat/completions", {"model": self.cfg.model, "messages": messages, **params})

    def complete(self, prompt: str, **params) -> Reply:
        """A text completion (`/completions`): what evaluating a base model's continuation needs."""
        return self._ask("/completions", {"model": self.cfg.model, "prompt": prompt, **params})

    def score(self, prompt: list[int]) -> Reply:
        """The log-prob of each of a prompt's tokens (`echo` with `logprobs`, given token ids, as
        lm-eval's local-completions asks vLLM or `lmforge serve`): what scoring answer choices
        needs. One token is generated, since some servers refuse zero; not streamed, since a
        stream spreads the prompt's log-probs over chunks differently from server to server."""
        body = {
            "model": self.cfg.model,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 1,
        }
        return self._ask("/completions", body, stream=False)

    def _ask(self, route: str, body: dict, stream: bool | None = None) -> Reply:
        key = request_key(body)  # without the transport's stream flags: the same question either way
        hit = self.cache.get(key)
        if hit is not None:
            self._count(cached=1)
            return Reply(**hit, cached=True)
        for attempt in range(self.cfg.max_retries + 1):
            backoff = min(self.cfg.max_backoff_s, self.cfg.backoff_s * 2**attempt)
            wait = None
            try:
                reply = self._send(route, body, self.cfg.stream if stream is None else stream)
            except httpx.TimeoutException:
                reason, wait = "timeout", random.uniform(backoff / 2, backoff)  # never straight back at a busy server
            except httpx.TransportError as e:
                reason = f"connection error ({type(e).__name__})"
            except _BrokenStream as e:
                reason = str(e)
            else:
                if isinstance(reply, Reply):
                    self.cache.put(key, {k: v for k, v in reply.__dict__.items() if k != "cached"})
                    self._count(
                        requests=1,
                        answered=1,
                        prompt_tokens=reply.prompt_tokens,
                        completion_tokens=reply.completion_tokens,
                    )
                    return reply
                reason, wait = f"HTTP {reply.status_code}", _retry_after(reply)
                if reply.status_code not in RETRYABLE:
                    self._count(requests=1)
                    message = self._client_error(reply)
                    self._fail(reason, message)
                    raise EndpointError(message, reason)
            self._count(requests=1)
            if attempt == self.cfg.max_retries:
                message = f"{self.cfg.base_url}: {reason} after {attempt + 1} attempts"
                self._fail(reason, message)
                raise EndpointError(message, reason)
            self._count(retries=1)
            self.sleep(wait if wait is not None else random.uniform(0, backoff))
        raise AssertionError("unreachable")

    def _send(self, route: str, body: dict, stream: bool) -> "Reply | httpx.Response":
        """The reply, or the error response to decide on. Streamed when `stream`; an endpoint
        that answers a stream request with plain JSON is read as such."""
        if stream:
            body = body | {"stream": True, "stream_options": {"include_usage": True}}
        with self.http.stream("POST", route, json=body) as r:
            if r.status_code != 200:
                r.read()
                return r
            if r.headers.get("content-type", "").startswith("text/event-stream"):
                return self._collect(r)
            r.read()
            return self._parse(r)

    def _collect(self, r: httpx.Response) -> Reply:
        """A streamed chat completion put together; an error event or a stream cut before its
        end is retried like a 5xx."""
        text, finish, usage = [], None, {}
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                self._fail("malformed response")
                raise EndpointError(
                    f"{self.cfg.base_url}: a stream event that is not JSON", "malformed response"
                ) from None
            if "error" in chunk:
                message = chunk["error"].get("message") if isinstance(chunk["error"], dict) else chunk["error"]
                raise _BrokenStream(f"stream error ({message})")
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                if choice.get("index", 0) == 0:  # a chat delta, or a text completion's piece
                    text.append((choice.get("delta") or {}).get("content") or choice.get("text") or "")
                    finish = choice.get("finish_reason") or finish
        if finish is None:
            raise _BrokenStream("stream ended early")
        return Reply(
            text="".join(text),
            finish_reason=finish,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            cached=False,
        )

    def _parse(self, r: httpx.Response) -> Reply:
        try:
            data = r.json()
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            return Reply(
                text=(choice["message"]["content"] if "message" in choice else choice["text"]) or "",
                finish_reason=choice.get("finish_reason"),
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                cached=False,
                logprobs=choice.get("logprobs") if isinstance(choice.get("logprobs"), dict) else None,
            )
        except (ValueError, KeyError, IndexError, TypeError):
            self._fail("malformed response")
            raise EndpointError(
                f"{self.cfg.base_url}: a response that is not a completion", "malformed response"
            ) from None

    def _client_error(self, r: httpx.Response) -> str:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:200]
        hint = f" (check ${self.cfg.api_key_env})" if r.status_code == 401 else ""
        return f"{self.cfg.base_url}: HTTP {r.status_code}: {message}{hint}"

    # ---- many requests ---------------------------------------------------------------------------

    def map(self, fn, items: list, progress: str | None = None) -> list:
        """`fn(item)` for every item, `concurrency` at a time, results in order (an exception is
        returned in its item's place); a rich progress bar with rate and ETA when `progress` names it."""
        results: list = [None] * len(items)
        bar = _Progress(progress, len(items)) if progress else None

        def run(i):
            try:
                results[i] = fn(items[i])
            except Exception as e:  # noqa: BLE001 - the caller decides per item
                results[i] = e
            if bar:
                bar.advance()

        try:
            with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
                list(pool.map(run, range(len(items))))
        finally:
            if bar:
                bar.close()
        return results

    # ---- accounting ------------------------------------------------------------------------------

    def _count(self, **kv) -> None:
        with self.lock:
            self.stats.update(kv)

    def _fail(self, reason: str, message: str | None = None) -> None:
        with self.lock:
            self.failures[reason] += 1
            self.first_error = self.first_error or message or reason

    def check_answered(self, what: str) -> None:
        """A one-line error when every request to the endpoint failed: a run that produced nothing
        must not look like a run that succeeded."""
        s = self.accounting()
        if s["failures"] and not s["answered"] and not s["answered_from_cache"]:
            counts = ", ".join(f"{reason}: {n}" for reason, n in s["failures"].items())
            raise EndpointError(
                f"{what}: every request to {self.cfg.base_url} failed ({counts}); first: {self.first_error}",
                "all failed",
            )

    def accounting(self) -> dict:
        s = self.stats
        cost = (
            s["prompt_tokens"] * (self.cfg.price_per_1k_prompt or 0)
            + s["completion_tokens"] * (self.cfg.price_per_1k_completion or 0)
        ) / 1000
        return {
            "endpoint": self.cfg.base_url,
            "model": self.cfg.model,
            "requests": s["requests"],
            "answered": s["answered"],
            "answered_from_cache": s["cached"],
            "retries": s["retries"],
            "failures": dict(self.failures),
            "prompt_tokens": s["prompt_tokens"],
            "completion_tokens": s["completion_tokens"],
            "cost": round(cost, 6) if (self.cfg.price_per_1k_prompt or self.cfg.price_per_1k_completion) else None,
        }

    def close(self) -> None:
        self.cache.close()
        self.http.close()


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: back off as usual


class _Progress:
    """Records done / total, records per second and time left."""

    def __init__(self, label: str, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.p = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            transient=True,
        )
        self.task = self.p.add_task(label, total=total, rate="")
        self.started, self.done = time.time(), 0
        self.p.start()
        self.lock = threading.Lock()

    def advance(self) -> None:
        with self.lock:
            self.done += 1
            rate = self.done / max(time.time() - self.started, 1e-9)
            self.p.update(self.task, advance=1, rate=f"{rate:.1f}/s")

    def close(self) -> None:
        self.p.stop()
