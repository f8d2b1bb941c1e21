"""The one decode engine: continuous batching over a shared KV cache, per-request sampling, seeds
and stop strings. `serve`, `chat` and the stages that sample (SFT examples, answers for judging)
all generate through it."""

from lmforge.engine.batch import Engine, GenerationError, QueueFull, Request, stop_token_ids
from lmforge.engine.sampling import SamplingParams

__all__ = ["Engine", "GenerationError", "QueueFull", "Request", "SamplingParams", "stop_token_ids"]
