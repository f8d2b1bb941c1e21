"""MT-Bench-style judging: answers in FastChat's layouts, single 1-10 and pairwise grading by an LLM
judge behind any OpenAI-compatible endpoint, English and German side by side."""

from lmforge.judge.stage import run_judge_stage

__all__ = ["run_judge_stage"]
