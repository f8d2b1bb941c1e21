"""MT-Bench-style judging: answers in FastChat's layouts, single 1-10 and pairwise grading by an LLM
judge behind any OpenAI-compatible endpoint, English and German side by side.

Besides the stage, what other stages read of a judge run: its answer files (`read_answers`), a
pairwise judgment's outcome (`pair_outcome`, for DPO pairs) and the score table (`score_table`,
for the model card)."""

from lmforge.judge.grade import pair_outcome
from lmforge.judge.questions import read_answers
from lmforge.judge.report import score_table
from lmforge.judge.stage import run_judge_stage

__all__ = ["pair_outcome", "read_answers", "run_judge_stage", "score_table"]
