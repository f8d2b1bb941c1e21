"""Imported only by datatrove's forkserver (see workers.py): it dies when lmforge dies, and so does
every pool worker it forks."""

import os

from lmforge.curate.workers import die_with_parent

die_with_parent()
os.register_at_fork(after_in_child=die_with_parent)
