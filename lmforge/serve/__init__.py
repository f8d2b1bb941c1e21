"""Serving: the OpenAI API, a web chat page and topical guardrails in front of the decode engine
(torch) or llama.cpp."""

from lmforge.serve.app import create_app
from lmforge.serve.backends import TorchBackend

__all__ = ["TorchBackend", "create_app"]
