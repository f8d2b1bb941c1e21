"""Tokenizer stage: train a byte-level BPE and save it as a Hugging Face tokenizer."""

from lmforge.tokenizer.chat_template import CHATML_TEMPLATE, encode_chat, render_chat
from lmforge.tokenizer.fertility import fertility
from lmforge.tokenizer.train_bpe import run_tokenizer_stage, train_bpe

__all__ = ["CHATML_TEMPLATE", "encode_chat", "fertility", "render_chat", "run_tokenizer_stage", "train_bpe"]
