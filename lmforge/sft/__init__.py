"""Instruction tuning: instruction-data readers (Alpaca, Dolly, OASST1, ShareGPT, messages), mixing,
assistant-only loss, full / LoRA / LLaMA-Adapter training, a chat model ready for `lmforge chat`."""

from lmforge.sft.data import encode, mix_datasets
from lmforge.sft.formats import read_conversations
from lmforge.sft.stage import run_sft_stage

__all__ = ["encode", "mix_datasets", "read_conversations", "run_sft_stage"]
