"""Instruction tuning: mixing instruction sets (read by lmforge/chat/formats.py), assistant-only loss
(lmforge/chat/encoding.py), full / LoRA / LLaMA-Adapter training, a chat model ready for `lmforge chat`."""

from lmforge.sft.data import heldout_by_language, mix_datasets
from lmforge.sft.stage import run_sft_stage
from lmforge.sft.train import heldout_loss, train_sft

__all__ = ["heldout_by_language", "heldout_loss", "mix_datasets", "run_sft_stage", "train_sft"]
