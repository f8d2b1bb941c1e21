"""Text facts every stage may need: which language a text is in."""

from lmforge.text.language import identify

__all__ = ["identify"]
