"""Chat with a model: one turn at a time with streaming (`reply`), used by `lmforge chat` and SFT samples."""

from lmforge.chat.session import GenerationError, Sampling, reply

__all__ = ["GenerationError", "Sampling", "reply"]
