"""Sample data written for lmforge that the defaults point at, shipped inside the package so that a
wheel installed anywhere finds it: the bilingual judge questions and reference answers, and the
Self-Instruct seed tasks. `examples/judge` and `examples/self_instruct` in the repository link here."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def sample(relative: str) -> str:
    """The absolute path of a shipped sample file, e.g. sample("judge/en/question.jsonl")."""
    return str(HERE / relative)
