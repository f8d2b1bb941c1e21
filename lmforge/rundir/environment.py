"""What a run needs to be reproduced: code commit, package versions, hardware."""

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import psutil

# what a run's results depend on: the manifest and a release's provenance and requirements list them
PACKAGES = (
    "lmforge",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "datatrove",
    "peft",
    "lm-eval",
    "huggingface_hub",
    "gguf",
    "numpy",
    "pydantic",
)


def code_commit() -> str:
    """The git commit of the lmforge source tree, with '-dirty' when it has uncommitted edits."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def package_versions() -> dict[str, str]:
    """Python's version and each installed package's (those not installed are left out)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def hardware() -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "torch_threads": torch.get_num_threads(),
        "gpus": [],
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info
