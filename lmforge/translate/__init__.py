"""Translate instruction sets and multiple-choice tasks through any OpenAI-compatible endpoint."""

from lmforge.translate.stage import run_translate_stage

__all__ = ["run_translate_stage"]
