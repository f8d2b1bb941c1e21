"""`lmforge serve`: the OpenAI API over one model, plus the web chat page and topical guardrails.

    POST /v1/chat/completions   POST /v1/completions   (streamed as SSE, or not)
    GET  /v1/models             GET  /health            GET  /   (the chat page)
    GET  /metrics               (Prometheus; behind the API key unless --metrics-public)
    GET  /openapi.json          (request and response bodies, and the error shape, declared)

The backend (the torch decode engine, or llama.cpp) does the decoding; this module speaks HTTP:
it checks every request before anything is queued, answers errors in OpenAI's shape, turns
engine events into SSE chunks, and cancels a request whose client went away, streamed or not,
which frees its batch slot at the next step. `begin_shutdown` ends every request at once (streams
get an error event, the others a 503) so that the process can exit. Guardrails see each chat's
last user message before the model does. Key and body-size checks sit in front (guard.py).
"""

import asyncio
import html
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from jinja2 import TemplateError
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lmforge import __version__
from lmforge.chat.tools import CallStream, call_schema, forced_opening, parse_calls, template_messages, tool_format
from lmforge.engine import QueueFull, SamplingParams
from lmforge.engine.batch import ShuttingDown
from lmforge.engine.constraints import json_grammar
from lmforge.engine.events import Aborted, Done, Logprobs, Text, Usage
from lmforge.errors import LmforgeError
from lmforge.serve.guard import Guard
from lmforge.serve.logprobs import TokenText, chat_logprobs, completion_logprobs
from lmforge.serve.metrics import CountRequests, Metrics, Watch
from lmforge.serve.protocol import (
    APIError,
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    ChunkChoice,
    Completion,
    CompletionChoice,
    CompletionRequest,
    Delta,
    ErrorResponse,
    Health,
    ModelCard,
    ModelList,
    ToolCall,
    UsageInfo,
    parse,
)

log = logging.getLogger("lmforge.serve")
MAX_BODY = 1 << 20
PAGE = Path(__file__).with_name("page.html")
SHUTTING_DOWN = "the server is shutting down"
GONE = object()  # queued by the disconnect watcher: the client of a non-streamed request left

ERRORS = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "A bad request: the `param` field names the field at fault"),
        (401, "Missing or wrong API key"),
        (404, "Unknown model or route"),
        (413, "Request body over the limit"),
        (429, "Too many requests queued"),
        (500, "Generation failed (not the client's mistake)"),
        (503, "The server is shutting down"),
    )
}


def _body_of(model_name: str, route: str) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model_name}"}}},
        },
        "operationId": route,
    }


def _answers(model, streamed: type | None = None) -> dict:
    ok = {
        "model": model,
        "description": "The completion; with `stream: true`, server-sent events each "
        f"holding a {(streamed or model).__name__} and a final `[DONE]`",
    }
    if streamed is not None or model is Completion:
        ok["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    return {200: ok, **ERRORS}


def create_app(
    backend,
    model_name: str,
    api_key: str | None = None,
    guardrails=None,
    max_body: int = MAX_BODY,
    metrics_public: bool = False,
) -> FastAPI:
    """`backend` has `context`, `chat_prompt(messages, tools)`, `chat_template(tools)`,
    `continuation(text)`, `text_prompt(text)`, `prompt_tokens`, `submit(prompt, params, emit) ->
    handle with cancel()`, `abort_all(message)` and `load()` (see backends.py)."""
    app = FastAPI(title="lmforge", version=__version__, docs_url=None, redoc_url=None)
    app.state.backend, app.state.shutting_down = backend, False
    text_of = TokenText(backend.tokenizer) if getattr(backend, "logprobs", False) else None
    metrics = app.state.metrics = Metrics(backend)
    app.add_middleware(Guard, api_key=api_key, max_body=max_body, metrics_public=metrics_public)
    app.add_middleware(CountRequests, metrics=metrics)  # outermost: the guard's 401s and 413s counted too
    created = int(time.time())

    @app.exception_handler(APIError)
    async def _api_error(_, e: APIError):
        return JSONResponse(
            e.body(), status_code=e.status, headers={"Connection": "close"} if e.status == 413 else None
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_, e: StarletteHTTPException):  # unknown path, wrong method: same error shape
        return JSONResponse(APIError(e.status_code, str(e.detail)).body(), status_code=e.status_code, headers=e.headers)

    @app.get("/health", response_model=Health)
    async def health():
        return {"status": "shutting down" if app.state.shutting_down else "ok", "model": model_name, **backend.load()}

    @app.get("/v1/models", response_model=ModelList, responses={401: ERRORS[401]})
    async def models():
        return ModelList(data=[ModelCard(id=model_name, created=created)])

    @app.get("/metrics", response_class=Response, responses={401: ERRORS[401]})
    async def prometheus():
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return PAGE.read_text(encoding="utf-8").replace("{{MODEL}}", html.escape(model_name))

    @app.post(
        "/v1/chat/completions",
        responses=_answers(ChatCompletion, ChatCompletionChunk),
        openapi_extra=_body_of("ChatRequest", "createChatCompletion"),
    )
    async def chat(request: Request):
        req = parse(ChatRequest, await _json(request))
        _check_model(req.model, model_name)
        _check_open(app)
        messages = _messages(req)
        if guardrails is not None:
            decision = await run_in_threadpool(guardrails.decide_messages, messages)  # embedding drops the GIL
            if decision is not None and not decision.allowed:
                metrics.blocks.labels(decision.topic or "(no allowed topic)").inc()
                return _canned(req, decision.reply, model_name)
        if req.top_logprobs is not None and not req.logprobs:
            raise APIError(400, "top_logprobs: needs logprobs: true", param="top_logprobs")
        if req.max_tokens == 0:
            raise APIError(400, "max_tokens: must be at least 1", param="max_tokens")
        _check_can(backend, "logprobs" if req.logprobs else None)
        _check_format(req)
        plan = _tool_plan(req, backend)
        try:
            prompt = backend.chat_prompt(messages, req.tools_offered())
        except (TemplateError, LmforgeError) as e:
            raise APIError(
                400, f"messages: the model's chat template rejects this conversation: {e}", param="messages"
            ) from None
        if plan is not None and plan.opening:
            prompt = prompt + backend.continuation(plan.opening)
        return await _answer(request, req, [(prompt, "")], backend, model_name, text_of, metrics.watch(), plan)

    @app.post(
        "/v1/completions",
        responses=_answers(Completion),
        openapi_extra=_body_of("CompletionRequest", "createCompletion"),
    )
    async def completions(request: Request):
        req = parse(CompletionRequest, await _json(request))
        _check_model(req.model, model_name)
        _check_open(app)
        if req.max_tokens == 0 and not req.echo:
            raise APIError(400, "max_tokens: 0 asks for nothing unless echo is true", param="max_tokens")
        asked = req.logprobs is not None  # echo alone is the prompt's text, which any backend can give
        _check_can(backend, "logprobs" if asked else None, "echo" if req.echo and asked else None)
        _check_format(req)
        prompts = [_read_prompt(backend, p, k, req) for k, p in enumerate(req.prompts())]
        return await _answer(request, req, prompts, backend, model_name, text_of, metrics.watch())

    app.openapi = lambda: _openapi(app)
    return app


def begin_shutdown(app: FastAPI) -> None:
    """Refuse new requests and end every running and queued one now (call on the event loop)."""
    app.state.shutting_down = True
    app.state.backend.abort_all(SHUTTING_DOWN)


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema plus the request bodies, which the routes parse themselves (strictly, with
    OpenAI's error shape) and FastAPI therefore cannot see, and the chunk a stream's events hold."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            routes=app.routes,
            description="The OpenAI API (chat and text completions) over one model.",
        )
        _, defs = models_json_schema(
            [(ChatRequest, "validation"), (CompletionRequest, "validation"), (ChatCompletionChunk, "serialization")],
            ref_template="#/components/schemas/{model}",
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
        app.openapi_schema = schema
    return app.openapi_schema


async def _json(request: Request) -> dict:
    raw = await request.body()  # the guard stops it at the size limit (413)
    try:
        body = json.loads(raw)
    except RecursionError:
        raise APIError(400, "invalid JSON: nested too deeply", code="invalid_json") from None
    except ValueError as e:  # JSONDecodeError, undecodable bytes, integers over Python's digit limit
        raise APIError(400, f"invalid JSON: {e}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, "invalid JSON: the body must be a JSON object", code="invalid_json")
    return body


def _check_model(requested: str | None, served: str) -> None:
    if requested is not None and requested != served:
        raise APIError(
            404,
            f"model {requested!r} does not exist; this server serves {served!r}",
            param="model",
            code="model_not_found",
        )


def _check_open(app: FastAPI) -> None:
    if app.state.shutting_down:
        raise APIError(503, SHUTTING_DOWN, "server_error", code="shutting_down")


def _check_can(backend, *asked: str | None) -> None:
    """A 400 for a field that asks for log-probabilities (`logprobs`) or a scored prompt (`echo`)
    from a backend that cannot give them."""
    for name in filter(None, asked):
        if not getattr(backend, name, False):
            raise APIError(
                400,
                f"{name}: not supported by the llama.cpp backend (serve with --backend torch)",
                param=name,
                code="unsupported_parameter",
            )


def _check_format(req) -> None:
    """A 400 naming the response format's part at fault: a json_schema type without its schema, or
    a schema the grammar compiler cannot use (it says why)."""
    if req.response_format is None:
        return
    try:
        schema = req.response_format.schema_wanted()
    except ValueError as e:
        raise APIError(400, f"response_format.{e}", param="response_format.json_schema") from None
    if schema is not None:
        try:
            json_grammar(schema)
        except LmforgeError as e:
            where = "response_format.json_schema.schema"
            raise APIError(400, f"{where}: {e}", param=where, code="invalid_schema") from None


@dataclass
class ToolPlan:
    """How a chat's reply is read for tool calls: the template's convention, what the prompt was
    extended with to force a call (its reply continues it), and the JSON schema the rest must match."""

    fmt: str
    opening: str = ""
    schema: dict | None = None


def _messages(req: ChatRequest) -> list[dict]:
    """The conversation as the chat template reads it (a developer turn is a system turn)."""
    raw = []
    for i, m in enumerate(req.messages):
        turn = {"role": "system" if m.role == "developer" else m.role, "content": _text(m, i)}
        if m.tool_calls:
            turn["tool_calls"] = [c.model_dump() for c in m.tool_calls]
        if m.tool_call_id is not None:
            turn["tool_call_id"] = m.tool_call_id
        if m.name is not None:
            turn["name"] = m.name
        raw.append(turn)
    try:
        return template_messages(raw)
    except ValueError as e:
        where = str(e).split(":")[0]
        raise APIError(400, str(e), param=where) from None


def _tool_plan(req: ChatRequest, backend) -> ToolPlan | None:
    """None without tools offered; else how calls are read, and forced when the client requires one.
    Every mistake is a 400 naming its field: a choice without tools or naming none of them, a
    template that takes no tools, parameters the grammar compiler cannot use."""
    forced, name = req.forced_tool()
    if forced and not req.tools:
        raise APIError(400, "tool_choice: asks for a tool call but no tools are given", param="tool_choice")
    names = [t.function.name for t in req.tools or []]
    if name is not None and name not in names:
        where = "tool_choice.function.name"
        raise APIError(400, f"{where}: {name!r} is not one of the tools given ({', '.join(names)})", param=where)
    tools = req.tools_offered()
    if tools is None:
        return None
    if forced and req.response_format is not None and req.response_format.type != "text":
        raise APIError(
            400,
            "response_format: a required tool call is JSON already; ask for one or the other",
            param="response_format",
        )
    try:
        fmt = tool_format(backend.chat_template(tools))
    except LmforgeError as e:
        raise APIError(400, f"tools: {e}", param="tools", code="unsupported_parameter") from None
    for i, t in enumerate(tools):
        try:
            json_grammar(call_schema([t], fmt))
        except LmforgeError as e:
            where = f"tools[{i}].function.parameters"
            raise APIError(400, f"{where}: {e}", param=where, code="invalid_schema") from None
    if not forced:
        return ToolPlan(fmt)
    return ToolPlan(fmt, forced_opening(fmt), call_schema(tools, fmt, name))


def _read_prompt(backend, prompt: str | list[int], k: int, req) -> tuple[list[int], str]:
    """A completions prompt as token ids, and its text (what `echo` returns). Ids are checked
    against the vocabulary: an id past it is the client's mistake, named, not a failed forward."""
    if isinstance(prompt, str):
        return backend.text_prompt(prompt), prompt
    vocab = getattr(backend, "vocab_size", None)
    for j, token in enumerate(prompt):
        if vocab is not None and token >= vocab:
            where = f"prompt[{k}][{j}]" if isinstance(req.prompt[0], list) else f"prompt[{j}]"
            raise APIError(400, f"{where}: token id {token} is not in the vocabulary of {vocab}", param=where)
    tokenizer = getattr(backend, "tokenizer", None)
    return prompt, tokenizer.decode(prompt) if tokenizer is not None and req.echo else ""


def _text(message, i: int) -> str:
    try:
        return message.text()
    except ValueError as e:
        raise APIError(400, f"messages[{i}].content: {e}", param=f"messages[{i}].content") from None


def _params(req, prompt_len: int, context: int, index: int, plan: ToolPlan | None = None) -> SamplingParams:
    room = context - prompt_len
    if room < 1:
        raise APIError(
            400,
            f"the prompt ({prompt_len} tokens) fills the model's context of {context} tokens",
            param="messages" if hasattr(req, "messages") else "prompt",
            code="context_length_exceeded",
        )
    limit = req.limit()
    if limit is not None and limit > room:
        raise APIError(
            400,
            f"max_tokens {limit} + prompt {prompt_len} tokens exceed the model's context of {context} tokens",
            param="max_tokens",
            code="context_length_exceeded",
        )
    seed = None if req.seed is None else req.seed + index  # n > 1: different, still reproducible
    return SamplingParams(
        max_tokens=limit if limit is not None else min(room, 512),
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=0,  # the OpenAI API has no top-k
        seed=seed,
        stop=list(req.stop or []),
        logprobs=_logprobs_asked(req),
        echo=getattr(req, "echo", False),
        json_schema=_schema(req, plan),
    )


def _schema(req, plan: ToolPlan | None) -> dict | None:
    """What the reply's JSON must match: a forced tool call's, or the response format's."""
    if plan is not None and plan.schema is not None:
        return plan.schema
    return req.response_format.schema_wanted() if req.response_format else None


def _logprobs_asked(req) -> int | None:
    """How many alternatives per token the request wants with its log-probs; None: no log-probs."""
    if isinstance(req, ChatRequest):
        return (req.top_logprobs or 0) if req.logprobs else None
    return req.logprobs


def _submit_all(req, prompts: list[tuple[list[int], str]], backend, queue: asyncio.Queue, plan: ToolPlan | None):
    """Every prompt `n` times; choice `k * n + i` is prompt k's i-th."""
    loop = asyncio.get_running_loop()

    def emitter(i: int):
        def emit(ev) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (i, ev))
            except RuntimeError:  # the loop is closed: the server has stopped, nobody is listening
                pass

        return emit

    handles = []
    try:
        for k, (prompt, _) in enumerate(prompts):
            length = backend.prompt_tokens(prompt)
            for i in range(req.n):
                params = _params(req, length, backend.context, i, plan)
                handles.append(backend.submit(prompt, params, emitter(k * req.n + i)))
    except BaseException as e:
        for h in handles:
            h.cancel()
        if isinstance(e, QueueFull):
            raise APIError(429, f"server busy: {e}", "rate_limit_error", code="queue_full") from None
        if isinstance(e, ShuttingDown):
            raise APIError(503, SHUTTING_DOWN, "server_error", code="shutting_down") from None
        if isinstance(e, LmforgeError):
            raise APIError(400, str(e)) from None
        raise
    return handles


def _failure(ev) -> APIError:
    if isinstance(ev, Aborted):
        return APIError(503, ev.message, "server_error", code="shutting_down")
    return APIError(500, f"generation failed: {ev.message}", "server_error")


async def _watch_disconnect(request: Request, queue: asyncio.Queue) -> None:
    """Once the body is read, the next ASGI message is the client's disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    queue.put_nowait((None, GONE))


async def _answer(
    request: Request,
    req,
    prompts,
    backend,
    model_name: str,
    text_of: TokenText | None,
    watch: Watch,
    plan: ToolPlan | None = None,
):
    chat = isinstance(req, ChatRequest)
    queue: asyncio.Queue = asyncio.Queue()
    handles = _submit_all(req, prompts, backend, queue, plan)
    rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    if req.stream:
        return StreamingResponse(
            _sse(req, prompts, queue, handles, rid, model_name, text_of, watch, plan),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    count = len(handles)
    texts, finish, usage = [""] * count, [None] * count, [Usage()] * count
    scored, generated = [[] for _ in range(count)], [[] for _ in range(count)]  # prompt's / reply's log-probs
    watcher = asyncio.create_task(_watch_disconnect(request, queue))
    try:
        while any(f is None for f in finish):
            i, ev = await queue.get()
            watch.event(i, ev)
            if ev is GONE:
                log.debug("%s: the client left; its generation is cancelled", rid)
                return JSONResponse(APIError(499, "client closed the request").body(), status_code=499)
            if isinstance(ev, Text):
                texts[i] += ev.piece
            elif isinstance(ev, Logprobs):
                (scored if ev.prompt else generated)[i].extend(ev.entries)
            elif isinstance(ev, Done):
                finish[i], usage[i] = ev.reason, ev.usage
            else:
                raise _failure(ev)
    finally:
        watcher.cancel()
        for h in handles:
            h.cancel()
    total, asked = _sum_usage(usage, req.n), _logprobs_asked(req) is not None
    watch.prompt(total.prompt_tokens)
    if chat:
        choices = []
        for i, (t, f) in enumerate(zip(texts, finish)):
            message = AssistantMessage(content=t)
            if plan is not None:
                content, calls = parse_calls(plan.opening + t, plan.fmt)
                if calls:
                    message = AssistantMessage(
                        content=content or None, tool_calls=[ToolCall.model_validate(c.openai()) for c in calls]
                    )
                    f = "tool_calls" if f == "stop" else f
            logprobs = chat_logprobs(generated[i], text_of) if asked else None
            choices.append(ChatChoice(index=i, message=message, finish_reason=f, logprobs=logprobs))
        return ChatCompletion(id=rid, created=int(time.time()), model=model_name, usage=total, choices=choices)
    choices = []
    for i, (t, f) in enumerate(zip(texts, finish)):
        echoed = prompts[i // req.n][1] if req.echo else ""
        logprobs = None
        if asked:  # the prompt's tokens from 0, the reply's after the echoed prompt
            ids = req.return_tokens_as_token_ids
            logprobs = completion_logprobs(scored[i], text_of, ids=ids)
            logprobs.extend(completion_logprobs(generated[i], text_of, len(echoed), ids))
        choices.append(CompletionChoice(index=i, text=echoed + t, finish_reason=f, logprobs=logprobs))
    return Completion(id=rid, created=int(time.time()), model=model_name, usage=total, choices=choices)


async def _sse(
    req,
    prompts,
    queue: asyncio.Queue,
    handles,
    rid: str,
    model_name: str,
    text_of: TokenText | None,
    watch: Watch,
    plan: ToolPlan | None = None,
):
    """SSE chunks; the client going away cancels the requests (their slots free at the next step).
    A token's log-probs ride in the chunk that carries its text (or the final one); an echoed
    prompt is each choice's first text. With tools, text that may open a call is held back; at
    the end its calls go out as one `delta.tool_calls` chunk, and what was not a call as text."""
    chat, created, count = isinstance(req, ChatRequest), int(time.time()), len(handles)
    echo, as_ids = getattr(req, "echo", False), getattr(req, "return_tokens_as_token_ids", False)

    def chunk(choices: list, usage: UsageInfo | None = None) -> str:
        kind = ChatCompletionChunk if chat else Completion
        body = kind(id=rid, created=created, model=model_name, choices=choices, usage=usage)
        return f"data: {body.model_dump_json(exclude={'usage'} if usage is None else None)}\n\n"

    pending = [[] for _ in range(count)]  # log-probs of tokens whose text has not been sent yet
    calls = [CallStream(plan.fmt, plan.opening) if plan else None for _ in range(count)]
    offset = [len(prompts[i // req.n][1]) if echo else 0 for i in range(count)]

    def choice(i: int, text: str | None = None, finish: str | None = None, role: bool = False):
        entries, pending[i] = pending[i], []
        if chat:
            delta = Delta(role="assistant", content="") if role else Delta(content=text)
            logprobs = chat_logprobs(entries, text_of) if entries else None
            return ChunkChoice(index=i, delta=delta, finish_reason=finish, logprobs=logprobs)
        logprobs = completion_logprobs(entries, text_of, offset[i], as_ids) if entries else None
        offset[i] += sum(len(text_of(e.token)[0]) for e in entries)
        return CompletionChoice(index=i, text=text or "", finish_reason=finish, logprobs=logprobs)

    finished, usage = 0, [Usage()] * count
    try:
        if chat:
            yield chunk([choice(i, role=True) for i in range(count)])
        elif echo and _logprobs_asked(req) is None:
            yield chunk([choice(i, prompts[i // req.n][1]) for i in range(count)])
        while finished < count:
            i, ev = await queue.get()
            watch.event(i, ev)
            if isinstance(ev, Logprobs) and ev.prompt:
                yield chunk(
                    [
                        CompletionChoice(
                            index=i,
                            text=prompts[i // req.n][1],
                            logprobs=completion_logprobs(ev.entries, text_of, ids=as_ids),
                        )
                    ]
                )
            elif isinstance(ev, Logprobs):
                pending[i].extend(ev.entries)
            elif isinstance(ev, Text):
                piece = ev.piece if calls[i] is None else calls[i].feed(ev.piece)
                if piece:
                    yield chunk([choice(i, piece)])
            elif isinstance(ev, Done):
                finished += 1
                usage[i] = ev.usage
                reason = ev.reason
                if calls[i] is not None:
                    rest, found = calls[i].end()
                    if rest:
                        yield chunk([choice(i, rest)])
                    if found:
                        delta = Delta(tool_calls=[c.openai(index=j) for j, c in enumerate(found)])
                        yield chunk([ChunkChoice(index=i, delta=delta)])
                        reason = "tool_calls" if reason == "stop" else reason
                yield chunk([choice(i, finish=reason)])
            else:
                yield f"data: {json.dumps(_failure(ev).body())}\n\n"
                return
        total = _sum_usage(usage, req.n)
        watch.prompt(total.prompt_tokens)
        if req.stream_options and req.stream_options.include_usage:
            yield chunk([], total)
        yield "data: [DONE]\n\n"
    finally:
        for h in handles:
            h.cancel()


def _sum_usage(usages: list[Usage], n: int) -> UsageInfo:
    """A prompt answered `n` times is counted once."""
    prompt = sum(u.prompt_tokens for u in usages[::n])
    completion = sum(u.completion_tokens for u in usages)
    return UsageInfo(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _canned(req, refusal, model_name: str):
    """A guardrail's reply, in the shape the client asked for, without the model."""
    rid, now = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    usage = UsageInfo(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    if not req.stream:
        return ChatCompletion(
            id=rid,
            created=now,
            model=model_name,
            usage=usage,
            choices=[ChatChoice(index=0, message=AssistantMessage(content=refusal), finish_reason="stop")],
        )

    async def events():
        for delta, finish in ((Delta(role="assistant", content=refusal), None), (Delta(), "stop")):
            body = ChatCompletionChunk(
                id=rid, created=now, model=model_name, choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish)]
            )
            yield f"data: {body.model_dump_json(exclude={'usage'})}\n\n"
        if req.stream_options and req.stream_options.include_usage:
            yield f"data: {ChatCompletionChunk(id=rid, created=now, model=model_name, choices=[], usage=usage).model_dump_json()}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
