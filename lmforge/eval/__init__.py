"""Evaluation stage. So far: bits-per-byte and perplexity per language on held-out text."""

from lmforge.eval.bits_per_byte import bits_per_byte, run_eval_stage

__all__ = ["bits_per_byte", "run_eval_stage"]
