"""Self-Instruct: grow an instruction set from seed tasks through any OpenAI-compatible endpoint."""

from lmforge.self_instruct.stage import run_self_instruct_stage

__all__ = ["run_self_instruct_stage"]
