"""The OpenAI wire format: requests and responses as pydantic models, and the one error shape.

Types are strict, as OpenAI's API checks them: `"max_tokens": "5"`, `"n": true` or
`"stream": "yes"` are 400s naming the field, not values coerced behind the client's back. Unknown
fields are accepted and ignored (clients send `user` and vendor extensions), but a known OpenAI
field that asks for something this server does not do (`logit_bias`, penalties, the legacy
`functions`...) is a 400 naming it: ignoring it would hand an agent or an evaluator a
wrong answer that looks right. Log-probabilities come in OpenAI's two shapes: chat's
`logprobs.content[]` and the legacy completions' parallel lists (with `echo`, the prompt's tokens
first), which is what lm-evaluation-harness's `local-completions` scores multiple choice with.
Tools come as OpenAI's `tools` / `tool_choice`; an assistant turn sent back may hold its
`tool_calls` (arguments as a JSON string) and a `tool` turn the result (`tool_call_id`).
Field paths read as in the request (`messages[0].content`), as OpenAI and vLLM name them.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer

from lmforge.engine.sampling import MAX_LOGPROBS

MAX_N = 8
MAX_PROMPTS = 64  # prompts in one completions request (lm-eval sends a batch as one)
INT64 = (-(2**63), 2**63 - 1)
UNION_MEMBERS = {
    "str",
    "int",
    "float",
    "bool",
    "none",
    "list",
    "dict",
    "list[str]",
    "list[dict[str,any]]",
    "constrained-str",
    "list[constrained-str]",
}
Text = Annotated[str, Field(min_length=1)]


class APIError(Exception):
    """An HTTP error answered with OpenAI's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict:
        return ErrorResponse(
            error=ErrorObject(message=self.message, type=self.type, param=self.param, code=self.code)
        ).model_dump()


# ---- requests ------------------------------------------------------------------------------------


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    include_usage: bool = False


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: Text
    arguments: str  # JSON, as OpenAI sends it


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] | None = None  # an assistant's calls, sent back with the conversation
    tool_call_id: str | None = None  # a tool turn: the call it answers
    name: str | None = None

    def text(self) -> str:
        """Content as text; a list of parts keeps its text parts (this server reads no images)."""
        if isinstance(self.content, list):
            parts = []
            for part in self.content:
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ValueError("only text content parts are supported")
                parts.append(part["text"])
            return "".join(parts)
        return self.content or ""


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """`text` (no constraint), `json_object` (any JSON object) or `json_schema` (JSON matching it)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    def schema_wanted(self) -> dict | None:
        if self.type == "json_schema":
            if self.json_schema is None:
                raise ValueError("json_schema: required with type json_schema")
            return self.json_schema.schema_
        return {"type": "object"} if self.type == "json_object" else None


class Function(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["function"]
    function: Function


class NamedFunction(BaseModel):
    model_config = ConfigDict(strict=True)
    name: Text


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(strict=True)
    type: Literal["function"]
    function: NamedFunction


class Sampling(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)
    model: str | None = None
    max_tokens: int | None = Field(None, ge=0)  # 0 only with echo (checked where the prompt is read)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1, le=MAX_N)
    stop: Text | Annotated[list[Text], Field(max_length=4)] | None = None
    seed: int | None = Field(None, ge=INT64[0], le=INT64[1])
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    response_format: ResponseFormat | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v) -> list[str]:
        return [v] if isinstance(v, str) else (v or [])

    def limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None

    def tools_offered(self) -> list[dict] | None:
        """The tools the model is shown: none with `tool_choice: none` (it may not call them)."""
        if not self.tools or self.tool_choice == "none":
            return None
        return [t.model_dump(exclude_none=True) for t in self.tools]

    def forced_tool(self) -> tuple[bool, str | None]:
        """(must the reply be a call, of which function: None for any)."""
        if isinstance(self.tool_choice, NamedToolChoice):
            return True, self.tool_choice.function.name
        return self.tool_choice == "required", None


TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class CompletionRequest(Sampling):
    # a text, token ids, or a list of either: several prompts, answered as choices prompt by prompt
    prompt: Text | TokenIds | Annotated[list[Text] | list[TokenIds], Field(min_length=1, max_length=MAX_PROMPTS)]
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    echo: bool = False
    return_tokens_as_token_ids: bool = False  # vLLM's extension: log-prob tokens as `token_id:N`

    def prompts(self) -> list[str | list[int]]:
        if isinstance(self.prompt, str) or isinstance(self.prompt[0], int):
            return [self.prompt]
        return list(self.prompt)


# A field that asks for a feature, and the values that do not ask for anything.
UNSUPPORTED: dict[str, tuple] = {
    "functions": (None, []),
    "function_call": (None, "none"),
    "logit_bias": (None, {}),
    "presence_penalty": (None, 0),
    "frequency_penalty": (None, 0),
    "best_of": (None, 1),
    "suffix": (None, ""),
    "audio": (None,),
}
UNSUPPORTED_IN_MESSAGES: dict[str, tuple] = {"function_call": (None,)}


def _same_kind(a, b) -> bool:
    """`False == 0` in Python, but `logprobs: 0` asks for log-probs where `false` does not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b)
    return type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float)))


def _asks(value, harmless: tuple) -> bool:
    return not any(_same_kind(value, h) and value == h for h in harmless)


def check_unsupported(body: dict) -> None:
    """A 400 naming the first field that asks for a feature this server does not have yet."""
    for name, harmless in UNSUPPORTED.items():
        if name in body and _asks(body[name], harmless):
            raise APIError(400, f"{name}: not supported by this server yet", param=name, code="unsupported_parameter")
    for i, message in enumerate(body.get("messages") or []):
        if isinstance(message, dict):
            for name, harmless in UNSUPPORTED_IN_MESSAGES.items():
                if name in message and _asks(message[name], harmless):
                    param = f"messages[{i}].{name}"
                    raise APIError(
                        400, f"{param}: not supported by this server yet", param=param, code="unsupported_parameter"
                    )


def find_surrogate(value, path: str = "") -> str | None:
    """The path of the first string (or key) holding a lone UTF-16 surrogate, which JSON's `\\ud800`
    escape can carry but no text encoding (tokenizer, UTF-8) accepts."""
    if isinstance(value, str):
        return path if any("\ud800" <= c <= "\udfff" for c in value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            where = f"{path}.{k}" if path else str(k)
            if find_surrogate(k) is not None:
                return where
            found = find_surrogate(v, where)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = find_surrogate(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def field_path(loc: tuple) -> str | None:
    """pydantic's location ("messages", 0, "content", "str") as the client wrote it:
    `messages[0].content` (a union's member name is pydantic's, not the client's)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).lower().replace(" ", "") not in UNION_MEMBERS and "[" not in str(part):
            out += f".{part}" if out else str(part)
    return out or None


def most_telling(errors: list[dict]) -> dict:
    """Of pydantic's errors (one per union member tried), the one that explains the mistake: a
    value of the right type that breaks a rule ("at most 1 item") before a member whose type did
    not fit at all, and the deepest place (`prompt[0]`) before its container."""
    broken = [e for e in errors if not e["type"].endswith("_type") and e["type"] != "model_attributes_type"]
    candidates = broken or errors
    return max(candidates, key=lambda e: len([p for p in e["loc"] if field_path((p,)) or isinstance(p, int)]))


def parse(model: type[BaseModel], body: dict) -> BaseModel:
    """The request, or a 400 naming the first bad field (`messages[1].role`)."""
    where = find_surrogate(body)
    if where is not None:
        raise APIError(400, f"{where}: contains a lone UTF-16 surrogate (not valid text)", param=where)
    check_unsupported(body)
    try:
        return model.model_validate(body)
    except ValidationError as e:
        first = field_path(e.errors()[0]["loc"]) or ""
        err = most_telling([x for x in e.errors() if (field_path(x["loc"]) or "").startswith(first)])
        param = field_path(err["loc"])
        message = err["msg"]
        if param == "seed":
            message += f" (seeds are 64-bit signed integers, {INT64[0]} to {INT64[1]})"
        raise APIError(400, f"{param}: {message}" if param else message, param=param) from None


# ---- responses -----------------------------------------------------------------------------------


class ErrorObject(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorObject


class UsageInfo(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None  # null when the reply is only tool calls, as OpenAI sends it
    tool_calls: list[ToolCall] | None = None


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class ChatTokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(BaseModel):
    content: list[ChatTokenLogprob]


class CompletionLogprobs(BaseModel):
    """The legacy shape: parallel lists, one entry per token (a prompt's first token has no log-prob:
    null), `top_logprobs` as {token: log-prob}, `text_offset` the token's place in `text`."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]

    def extend(self, more: "CompletionLogprobs") -> None:
        for name in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
            getattr(self, name).extend(getattr(more, name))


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: str | None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo


class Delta(BaseModel):
    """What a chunk adds; unset parts are left out, as OpenAI sends `{"content": "..."}`."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # each with its `index`, as OpenAI streams them

    @model_serializer(mode="wrap")
    def _only_set(self, handler):
        return {k: v for k, v in handler(self).items() if v is not None}


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    logprobs: ChatLogprobs | None = None
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: UsageInfo | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None


class Completion(BaseModel):
    """A text completion; streamed chunks have the same shape (OpenAI's legacy API)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "lmforge"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["ok", "shutting down"]
    model: str
    running: int
    waiting: int
