"""Choosing the compute precision: bf16 autocast wherever the hardware has native bf16 math.

Master weights and optimizer state stay fp32 either way; only matmul inputs are bf16. On
GPUs this is the usual choice. On CPUs with AVX512-BF16 or AMX (Zen 4+, Sapphire Rapids+)
oneDNN's bf16 matmuls run about 1.5x faster than fp32 (bench/RESULTS.md); CPUs without them
would emulate bf16 and get slower, so they stay fp32.
"""

from pathlib import Path

import torch

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16() -> bool:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: be conservative
        return False
    return any(flag in info.split() for flag in NATIVE_BF16_FLAGS)


def use_bf16(precision: str, device: torch.device) -> bool:
    """Resolve train.precision ('auto', 'bf16', 'fp32') for a device."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()
