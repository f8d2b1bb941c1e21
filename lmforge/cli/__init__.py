"""The `lmforge` command line: one verb per stage, each a thin wrapper over the stage's entry point.

Verbs live by group (data, training, evaluation, serving, synthetic data, release); each module's
`register` adds its verbs to the one typer app. Errors caused by the user (`LmforgeError`) print
as one line and exit 2.
"""

import os
import sys

import typer

from lmforge.cli import data, evaluation, release, serving, synthetic, training
from lmforge.errors import LmforgeError

app = typer.Typer(
    help="Build fully open, language-adapted small language models end to end.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for group in (data, training, evaluation, serving, synthetic, release):
    group.register(app)


def main() -> None:
    # lmforge draws its own progress; HF's per-shard bars are noise. transformers reads this
    # huggingface_hub switch when it is imported, so no import (~1 s) is needed here.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app()
    except LmforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
