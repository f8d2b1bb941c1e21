"""Export: models into other runtimes' formats (GGUF for llama.cpp, Ollama, LM Studio)."""

from lmforge.export.gguf import export_gguf
from lmforge.export.verify import perplexity_gguf, verify_gguf

__all__ = ["export_gguf", "perplexity_gguf", "verify_gguf"]
