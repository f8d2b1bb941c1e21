"""The one client for OpenAI-compatible endpoints (OpenAI, vLLM, llama.cpp, `lmforge serve`):
concurrency, retries with backoff, an on-disk answer cache that makes runs resumable, and
accounting. `translate`, `self-instruct` and `judge` all talk through it."""

from lmforge.endpoint.client import EndpointClient, EndpointError, Reply

__all__ = ["EndpointClient", "EndpointError", "Reply"]
