"""Tokenizer stage: train a byte-level BPE and save it as a Hugging Face tokenizer (with the ChatML
chat template from lmforge/chat/template.py)."""

from lmforge.tokenizer.fertility import fertility
from lmforge.tokenizer.train_bpe import run_tokenizer_stage, train_bpe

__all__ = ["fertility", "run_tokenizer_stage", "train_bpe"]
