"""Self-Instruct: grow an instruction set from seed tasks through any OpenAI-compatible endpoint."""

from lmforge.self_instruct.rouge import rouge_l, words
from lmforge.self_instruct.stage import run_self_instruct_stage

__all__ = ["rouge_l", "run_self_instruct_stage", "words"]
