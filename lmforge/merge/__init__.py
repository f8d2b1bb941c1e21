"""Model merging: linear, task arithmetic, SLERP, TIES, DARE and the chat vector, over HF folders."""

from lmforge.merge.stage import merge_folders, run_merge_stage

__all__ = ["merge_folders", "run_merge_stage"]
