"""Chat with a model: one turn at a time with streaming (`reply`), used by `lmforge chat` and SFT samples."""

from lmforge.chat.session import GenerationError, make_engine, reply

__all__ = ["GenerationError", "make_engine", "reply"]
