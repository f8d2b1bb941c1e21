"""The one decode engine: continuous batching over a shared KV cache, per-request sampling, seeds
and stop strings. `serve`, `chat` and the stages that sample (SFT examples, answers for judging)
all generate through it."""

from lmforge.engine.batch import Engine, QueueFull, Request, stop_token_ids, wait_idle
from lmforge.engine.sampling import SamplingParams

__all__ = ["Engine", "QueueFull", "Request", "SamplingParams", "stop_token_ids", "wait_idle"]
