"""The `lmforge` command line: one verb per stage, each a thin wrapper over the stage's entry point.

Verbs live by group (data, training, evaluation, serving, synthetic data, release); each module's
`register` adds its verbs to the one typer app. Errors caused by the user (`LmforgeError`) print
as one line and exit 2.
"""

import sys

import typer

from lmforge import logs
from lmforge.cli import data, evaluation, launch, release, serving, synthetic, training
from lmforge.errors import LmforgeError

app = typer.Typer(
    help="Build fully open, language-adapted small language models end to end.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for group in (data, training, launch, evaluation, serving, synthetic, release):
    group.register(app)


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show libraries' warnings and logs and llama.cpp's (as LMFORGE_LOG=debug)."
    ),
) -> None:
    logs.configure(loud=verbose)


def main() -> None:
    logs.configure()  # quiet unless LMFORGE_LOG=debug; `--verbose` turns it up before any stage runs
    try:
        app()
    except LmforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
