"""Evaluation stage. So far: bits per byte and perplexity per language, and memorization."""

from lmforge.eval.bits_per_byte import bits_per_byte, run_eval_stage
from lmforge.eval.memorization import memorization

__all__ = ["bits_per_byte", "memorization", "run_eval_stage"]
