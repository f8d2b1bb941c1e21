"""Relaunch a training command under torchrun when the recipe asks for several processes."""

import os
import subprocess
import sys

from lmforge.errors import ConfigError, LmforgeError


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or "WORLD_SIZE" in os.environ


def torchrun_args(nproc: int, nnodes: int = 1, node_rank: int | None = None, rdzv_endpoint: str | None = None) -> list:
    """torchrun's options: one node alone (`--standalone`), or one of `nnodes` meeting at a c10d
    rendezvous (the same command started on every node)."""
    if nnodes == 1 and rdzv_endpoint is None:
        return ["--standalone", f"--nproc-per-node={nproc}"]
    if not rdzv_endpoint:
        raise ConfigError("train.rdzv_endpoint: several nodes meet at HOST:PORT on one of them; give it")
    return [
        f"--nnodes={nnodes}",
        f"--nproc-per-node={nproc}",
        *([f"--node-rank={node_rank}"] if node_rank is not None else []),
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={rdzv_endpoint}",
    ]


def check_devices(nproc: int) -> None:
    """On GPUs each process needs a GPU of its own; more processes than GPUs would share one (and
    run out of its memory) or fail on a device that does not exist."""
    import torch

    if torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise ConfigError(
            f"train.nproc_per_node = {nproc}: this machine has {torch.cuda.device_count()} GPU(s); "
            "start one process per GPU"
        )


def run_under_torchrun(nproc: int, lmforge_args: list[str], **nodes) -> None:
    """`torchrun [node options] -m lmforge ARGS`; raises when it fails."""
    check_devices(nproc)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *torchrun_args(nproc, **nodes),
        "-m",
        "lmforge",
        *lmforge_args,
    ]
    code = subprocess.call(cmd)
    if code != 0:
        raise LmforgeError(f"torchrun with {nproc} processes exited with code {code}")
