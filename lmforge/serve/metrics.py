"""`GET /metrics`: what the server did, in Prometheus' text format (prometheus-client).

Counted here in the HTTP layer, so both backends report the same series: requests by route and
status (401s and 413s from the guard included), prompt and generated tokens, time to first token
and the time between text pieces (inter-token latency: the engine sends a piece per token unless
a character spans tokens or a stop string is pending), guardrail refusals by topic, and, read from
the backend when scraped, running and queued requests and the batch's size limit. The torch
engine adds its decode steps and the rows they carried (their ratio is the mean batch size).
Each app has its own registry, so two servers in one process never share counts.
"""

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from lmforge.engine.events import Done, Text

ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/", "/openapi.json")
LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, backend):
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "lmforge_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.prompt_tokens = Counter("lmforge_prompt_tokens", "Prompt tokens of answered requests", registry=r)
        self.generated_tokens = Counter("lmforge_generation_tokens", "Tokens generated", registry=r)
        self.first_token = Histogram(
            "lmforge_time_to_first_token_seconds", "From submission to the first text", buckets=LATENCY, registry=r
        )
        self.between_tokens = Histogram(
            "lmforge_inter_token_latency_seconds", "Between consecutive text pieces", buckets=LATENCY, registry=r
        )
        self.blocks = Counter(
            "lmforge_guardrail_blocks", "Messages refused by a guardrail topic", ["topic"], registry=r
        )
        for name, key, text in (
            ("lmforge_requests_running", "running", "Requests decoding now"),
            ("lmforge_requests_waiting", "waiting", "Requests queued for a batch slot"),
            ("lmforge_engine_max_batch", "max_batch", "Rows the engine decodes together at most"),
        ):
            Gauge(name, text, registry=r).set_function(lambda key=key: backend.load().get(key, 0))
        if "steps" in backend.load():  # the torch engine
            for name, key, text in (
                ("lmforge_engine_steps", "steps", "Decode steps"),
                ("lmforge_engine_step_rows", "step_rows", "Rows summed over decode steps (/ steps = mean batch size)"),
                ("lmforge_prefix_cache_hits", "prefix_hits", "Prompts that began like a kept one"),
                ("lmforge_prefix_cache_reused_tokens", "prefix_tokens_reused", "Prompt tokens not prefilled again"),
            ):
                Gauge(name + "_total", text + " (a counter)", registry=r).set_function(
                    lambda key=key: backend.load().get(key, 0)
                )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def watch(self) -> "Watch":
        return Watch(self)


class Watch:
    """One API request's events, timed: first text per choice, then the gaps between texts."""

    def __init__(self, metrics: Metrics):
        self.metrics, self.start, self.last = metrics, time.perf_counter(), {}

    def event(self, i: int, ev) -> None:
        if isinstance(ev, Text):
            now = time.perf_counter()
            if i in self.last:
                self.metrics.between_tokens.observe(now - self.last[i])
            else:
                self.metrics.first_token.observe(now - self.start)
            self.last[i] = now
        elif isinstance(ev, Done):
            self.metrics.generated_tokens.inc(ev.usage.completion_tokens)

    def prompt(self, tokens: int) -> None:
        self.metrics.prompt_tokens.inc(tokens)


class CountRequests:
    """ASGI middleware outside the guard: every answer's status, by route (unknown paths as one)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = scope["path"] if scope["path"] in ROUTES else "other"

        async def counted(message):
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counted)
