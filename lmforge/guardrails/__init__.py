"""Topical guardrails: embed each user message offline and block or allow it by its nearness to
example utterances per topic, before the model sees it (`serve`, `chat`)."""

from lmforge.guardrails.evaluate import check, read_labelled
from lmforge.guardrails.rails import Decision, Rails, load_rails

__all__ = ["Decision", "Rails", "check", "load_rails", "read_labelled"]
