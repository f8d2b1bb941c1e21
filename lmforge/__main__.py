"""`python -m lmforge` — the same CLI; torchrun launches it this way."""

from lmforge.cli import main

main()
