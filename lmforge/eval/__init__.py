"""Evaluation stage: multiple-choice tasks in several languages side by side, bits per byte,
memorization, checkpoint sweeps, a baseline comparison (gain/forgetting) and the lm-eval bridge."""

from lmforge.eval.answers import INVALID, extract, score
from lmforge.eval.bits_per_byte import bits_per_byte
from lmforge.eval.compare import compare_results, comparison_table, paired_bootstrap
from lmforge.eval.generative import engine_replies, evaluate_generative
from lmforge.eval.memorization import memorization
from lmforge.eval.multiple_choice import evaluate_task
from lmforge.eval.shard import sharded
from lmforge.eval.stage import evaluate_model, headline, run_eval_stage
from lmforge.tasks import load_task

__all__ = [
    "INVALID",
    "bits_per_byte",
    "compare_results",
    "comparison_table",
    "engine_replies",
    "evaluate_generative",
    "evaluate_model",
    "evaluate_task",
    "extract",
    "headline",
    "load_task",
    "memorization",
    "paired_bootstrap",
    "run_eval_stage",
    "score",
    "sharded",
]
