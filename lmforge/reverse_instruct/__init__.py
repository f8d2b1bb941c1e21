"""Reverse instructions (LongForm): an endpoint writes the request each document answers."""

from lmforge.reverse_instruct.stage import run_reverse_instruct_stage

__all__ = ["run_reverse_instruct_stage"]
