"""Distilling step-by-step: a teacher's rationales as a second task for a small student."""

from lmforge.distill.stage import run_distill_stage

__all__ = ["run_distill_stage"]
