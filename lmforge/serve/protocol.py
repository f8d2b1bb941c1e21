"""The OpenAI wire format: request bodies as pydantic models, and the one error shape.

Unknown fields are accepted and ignored (clients send `user`, `logprobs: false`, vendor
extensions); known fields are checked, and the first bad one becomes a 400 whose `param` names it,
as OpenAI and vLLM answer.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_N = 8
UNION_MEMBERS = {"str", "int", "float", "bool", "none", "list", "dict"}


class APIError(Exception):
    """An HTTP error answered with OpenAI's error object."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict] | None = None

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


class Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1, le=MAX_N)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v):
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("up to 4 non-empty stop strings")
        return stops

    def limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)


class CompletionRequest(Sampling):
    prompt: str | list[str]

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v):
        if isinstance(v, list):
            if len(v) != 1:
                raise ValueError("one prompt per request (a list of exactly one string)")
            v = v[0]
        if not v:
            raise ValueError("must not be empty")
        return v


def parse(model: type[BaseModel], body: dict) -> BaseModel:
    """The request, or a 400 naming the first bad field (`messages.1.role`)."""
    try:
        return model.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        # a union's error names the member it tried ("content.str"); the client's field is "content"
        param = ".".join(str(p) for p in err["loc"] if str(p) not in UNION_MEMBERS and "[" not in str(p)) or None
        raise APIError(400, f"{param}: {err['msg']}" if param else err["msg"], param=param) from None
