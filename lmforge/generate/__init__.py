"""Generate stage: sample text from a checkpoint or run directory."""

from lmforge.generate.sample import generate_texts, run_generate_stage

__all__ = ["generate_texts", "run_generate_stage"]
