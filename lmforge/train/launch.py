"""Relaunch a training command under torchrun when the recipe asks for several processes."""

import os
import subprocess
import sys

from lmforge.errors import LmforgeError


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or "WORLD_SIZE" in os.environ


def run_under_torchrun(nproc: int, lmforge_args: list[str]) -> None:
    """`torchrun --standalone --nproc-per-node N -m lmforge ARGS`; raises when it fails."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "lmforge",
        *lmforge_args,
    ]
    code = subprocess.call(cmd)
    if code != 0:
        raise LmforgeError(f"torchrun with {nproc} processes exited with code {code}")
