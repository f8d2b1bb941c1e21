"""Generate stage: sample text from a checkpoint or run directory."""

from lmforge.generate.load import load_causal_lm, load_model_and_tokenizer, resolve_model_dir
from lmforge.generate.sample import generate_texts, run_generate_stage

__all__ = ["generate_texts", "load_causal_lm", "load_model_and_tokenizer", "resolve_model_dir", "run_generate_stage"]
