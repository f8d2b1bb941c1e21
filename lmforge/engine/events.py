"""What a decoding request tells its caller, one event at a time.

Both serving backends (the torch engine and llama.cpp) speak these, so the HTTP layer, `chat` and
`generate` read one vocabulary. A request ends with exactly one of `Done`, `Failed` or `Aborted`.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Text:
    """A piece of the reply: whole characters, never part of a stop string."""

    piece: str


@dataclass(frozen=True)
class TokenLogprob:
    """One token's log-probability under the model (raw logits, before temperature or top-p), and
    the `top` most likely tokens at its place with theirs. A prompt's first token has none."""

    token: int
    logprob: float | None
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Logprobs:
    """Log-probabilities asked for with the request: the prompt's tokens (`echo`), once, before any
    text; then each generated token's, before its text (a token that ends the reply included)."""

    entries: tuple[TokenLogprob, ...]
    prompt: bool = False


@dataclass(frozen=True)
class Done:
    """The reply ended: "stop", "length" or "cancelled" (the caller went away)."""

    reason: str
    usage: Usage


@dataclass(frozen=True)
class Failed:
    """The model failed while generating (a bug or a broken model, not the caller's mistake)."""

    message: str


@dataclass(frozen=True)
class Aborted:
    """The server stopped the request before it ended (it is shutting down)."""

    message: str


Event = Text | Logprobs | Done | Failed | Aborted
