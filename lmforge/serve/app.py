"""`lmforge serve`: the OpenAI API over one model, plus the web chat page and topical guardrails.

    POST /v1/chat/completions   POST /v1/completions   (streamed as SSE, or not)
    GET  /v1/models             GET  /health            GET  /   (the chat page)

The backend (the torch decode engine, or llama.cpp) does the decoding; this module speaks HTTP:
it checks every request before anything is queued, answers errors in OpenAI's shape, turns
engine events into SSE chunks, and cancels a request whose client went away, which frees its
batch slot at the next step. Guardrails see each chat's last user message before the model does.
"""

import asyncio
import html
import json
import logging
import time
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lmforge.engine import QueueFull, SamplingParams
from lmforge.errors import LmforgeError
from lmforge.serve.protocol import APIError, ChatRequest, CompletionRequest, parse

log = logging.getLogger("lmforge.serve")
MAX_BODY = 1 << 20
PAGE = Path(__file__).with_name("page.html")


def create_app(backend, model_name: str, api_key: str | None = None, guardrails=None,
               max_body: int = MAX_BODY) -> FastAPI:
    """`backend` has `context`, `chat_prompt(messages)`, `text_prompt(text)` and
    `submit(prompt, params, emit) -> handle with cancel()` (see backends.py)."""
    app = FastAPI(title="lmforge", docs_url=None, redoc_url=None)
    created = int(time.time())

    @app.exception_handler(APIError)
    async def _api_error(_, e: APIError):
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_, e: StarletteHTTPException):  # unknown path, wrong method: same error shape
        return JSONResponse(APIError(e.status_code, str(e.detail)).body(), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _server_error(_, e: Exception):
        log.exception("request failed")
        return JSONResponse(APIError(500, f"{type(e).__name__}: {e}", "server_error").body(), status_code=500)

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        if api_key and request.url.path.startswith("/v1/"):
            if request.headers.get("authorization", "") != f"Bearer {api_key}":
                return JSONResponse(APIError(401, "invalid or missing API key", "authentication_error",
                                             code="invalid_api_key").body(), status_code=401)
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > max_body:
            return JSONResponse(APIError(413, f"request body over {max_body} bytes").body(), status_code=413)
        return await call_next(request)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name, **backend.load()}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": created,
                                            "owned_by": "lmforge"}]}

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return PAGE.read_text(encoding="utf-8").replace("{{MODEL}}", html.escape(model_name))

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        req = parse(ChatRequest, await _json(request, max_body))
        _check_model(req.model, model_name)
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": _text(m, i)}
                    for i, m in enumerate(req.messages)]
        if guardrails is not None:
            refusal = await run_in_threadpool(guardrails.check_messages, messages)  # embedding drops the GIL
            if refusal is not None:
                return _canned(req, refusal, model_name)
        prompt = backend.chat_prompt(messages)
        return await _answer(req, prompt, backend, model_name, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        req = parse(CompletionRequest, await _json(request, max_body))
        _check_model(req.model, model_name)
        return await _answer(req, backend.text_prompt(req.prompt), backend, model_name, chat=False)

    return app


async def _json(request: Request, max_body: int) -> dict:
    raw = await request.body()
    if len(raw) > max_body:
        raise APIError(413, f"request body over {max_body} bytes")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise APIError(400, f"body is not valid JSON: {e}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, "body must be a JSON object", code="invalid_json")
    return body


def _check_model(requested: str | None, served: str) -> None:
    if requested is not None and requested != served:
        raise APIError(404, f"model {requested!r} does not exist; this server serves {served!r}",
                       param="model", code="model_not_found")


def _text(message, i: int) -> str:
    try:
        return message.text()
    except ValueError as e:
        raise APIError(400, f"messages.{i}.content: {e}", param=f"messages.{i}.content") from None


def _params(req, prompt_len: int, context: int, index: int) -> SamplingParams:
    room = context - prompt_len
    if room < 1:
        raise APIError(400, f"the prompt ({prompt_len} tokens) fills the model's context of {context} tokens",
                       param="messages" if hasattr(req, "messages") else "prompt", code="context_length_exceeded")
    limit = req.limit()
    if limit is not None and limit > room:
        raise APIError(400, f"max_tokens {limit} + prompt {prompt_len} tokens exceed the model's context of "
                            f"{context} tokens", param="max_tokens", code="context_length_exceeded")
    seed = None if req.seed is None else req.seed + index  # n > 1: different, still reproducible
    return SamplingParams(max_tokens=limit or min(room, 512), temperature=req.temperature, top_p=req.top_p,
                          seed=seed, stop=list(req.stop or []))


def _submit_all(req, prompt, backend, queue: asyncio.Queue):
    loop = asyncio.get_running_loop()
    handles, length = [], backend.prompt_tokens(prompt)
    try:
        for i in range(req.n):
            params = _params(req, length, backend.context, i)
            emit = (lambda i: lambda ev: loop.call_soon_threadsafe(queue.put_nowait, (i, ev)))(i)
            handles.append(backend.submit(prompt, params, emit))
    except QueueFull as e:
        for h in handles:
            h.cancel()
        raise APIError(429, f"server busy: {e}", "rate_limit_error", code="queue_full") from None
    except LmforgeError as e:
        for h in handles:
            h.cancel()
        raise APIError(400, str(e)) from None
    return handles


async def _answer(req, prompt, backend, model_name: str, chat: bool):
    queue: asyncio.Queue = asyncio.Queue()
    handles = _submit_all(req, prompt, backend, queue)
    rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    if req.stream:
        return StreamingResponse(_sse(req, queue, handles, rid, model_name, chat), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    texts, finish, usage = [""] * req.n, [None] * req.n, [None] * req.n
    try:
        while any(f is None for f in finish):
            i, ev = await queue.get()
            if ev[0] == "text":
                texts[i] += ev[1]
            elif ev[0] == "done":
                finish[i], usage[i] = ev[1], ev[2]
            else:
                raise APIError(500, f"generation failed: {ev[1]}", "server_error")
    finally:
        for h in handles:
            h.cancel()
    total = _sum_usage(usage)
    if chat:
        choices = [{"index": i, "message": {"role": "assistant", "content": t}, "logprobs": None,
                    "finish_reason": f} for i, (t, f) in enumerate(zip(texts, finish))]
        obj = "chat.completion"
    else:
        choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": f}
                   for i, (t, f) in enumerate(zip(texts, finish))]
        obj = "text_completion"
    return {"id": rid, "object": obj, "created": int(time.time()), "model": model_name, "choices": choices,
            "usage": total}


async def _sse(req, queue: asyncio.Queue, handles, rid: str, model_name: str, chat: bool):
    """SSE chunks; the client going away cancels the requests (their slots free at the next step)."""
    obj = "chat.completion.chunk" if chat else "text_completion"
    created = int(time.time())

    def chunk(choices, usage=None):
        body = {"id": rid, "object": obj, "created": created, "model": model_name, "choices": choices}
        if usage is not None:
            body["usage"] = usage
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def choice(i, text=None, finish=None, role=False):
        if chat:
            delta = ({"role": "assistant", "content": ""} if role else {}) | ({"content": text} if text else {})
            return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"index": i, "text": text or "", "logprobs": None, "finish_reason": finish}

    finished, usage = 0, [None] * req.n
    try:
        if chat:
            yield chunk([choice(i, role=True) for i in range(req.n)])
        while finished < req.n:
            i, ev = await queue.get()
            if ev[0] == "text":
                yield chunk([choice(i, ev[1])])
            elif ev[0] == "done":
                finished += 1
                usage[i] = ev[2]
                yield chunk([choice(i, finish=ev[1])])
            else:
                err = APIError(500, f"generation failed: {ev[1]}", "server_error")
                yield f"data: {json.dumps(err.body())}\n\n"
                return
        if req.stream_options and req.stream_options.include_usage:
            yield chunk([], _sum_usage(usage))
        yield "data: [DONE]\n\n"
    finally:
        for h in handles:
            h.cancel()


def _sum_usage(usages: list[dict]) -> dict:
    prompt = usages[0]["prompt_tokens"]
    completion = sum(u["completion_tokens"] for u in usages)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _canned(req, refusal, model_name: str):
    """A guardrail's reply, in the shape the client asked for, without the model."""
    rid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    if not req.stream:
        return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": refusal}, "logprobs": None,
                             "finish_reason": "stop"}], "usage": usage}

    async def events():
        base = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model_name}
        for delta, finish in (({"role": "assistant", "content": refusal}, None), ({}, "stop")):
            yield f"data: {json.dumps(base | {'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}]})}\n\n"
        if req.stream_options and req.stream_options.include_usage:
            yield f"data: {json.dumps(base | {'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
