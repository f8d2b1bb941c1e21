"""Curation's helper processes die with the `lmforge` process that started them.

datatrove's local executor forks a `multiprocess` Manager, spawns a forkserver and has it fork the
pool workers. When lmforge is killed with -9 it cannot stop them: they lived on, and a worker kept
writing into the run directory while a rerun wrote there too. Linux's PR_SET_PDEATHSIG has the
kernel kill a process when its parent dies. While curation runs, every child this process forks
sets it; the forkserver imports `forkserver_preload`, which sets it for the forkserver itself and
for every worker it forks. Elsewhere (not Linux) this is a no-op.
"""

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
_active = False
_registered = False


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent exits."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the line above took effect
        os._exit(1)


def _in_child() -> None:
    if _active:
        die_with_parent()


@contextlib.contextmanager
def children_die_with_us():
    """Within this block, every process curation starts dies when lmforge does."""
    global _active, _registered
    import multiprocess

    if not _registered:
        os.register_at_fork(after_in_child=_in_child)
        _registered = True
    # '__main__' is multiprocess's own default preload; a forkserver already running keeps its own
    multiprocess.get_context("forkserver").set_forkserver_preload(["__main__", "lmforge.curate.forkserver_preload"])
    _active = True
    try:
        yield
    finally:
        _active = False
