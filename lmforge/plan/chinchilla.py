"""Chinchilla compute-optimal planning (Hoffmann et al., 2022).

Training compute is C ≈ 6·N·D FLOPs for N parameters and D tokens. The paper's headline
rule is D ≈ 20·N at the optimum, so N = sqrt(C / 120). We also report the loss predicted by
the paper's parametric fit (approach 3): L(N, D) = E + A / N^α + B / D^β with
E = 1.69, A = 406.4, B = 410.7, α = 0.34, β = 0.28 (nats per token on MassiveText; only
a rough guide for another corpus and tokenizer).
"""

import math
from dataclasses import dataclass

from lmforge.errors import ConfigError

TOKENS_PER_PARAM = 20.0
FIT = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}

# Dense bf16 tensor-core peak per GPU, TFLOP/s, from the vendors' data sheets.
GPUS = {
    "H200": 989.0,
    "H100-SXM": 989.0,
    "H100-PCIe": 756.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10G": 125.0,
    "L4": 121.0,
    "RTX4090": 165.0,
    "RTX3090": 71.0,
    "T4": 65.0,
}


@dataclass(frozen=True)
class Plan:
    params: float
    tokens: float
    flops: float
    predicted_loss: float
    gpu: str
    num_gpus: int
    mfu: float
    hours: float


def predicted_loss(params: float, tokens: float) -> float:
    return FIT["E"] + FIT["A"] / params ** FIT["alpha"] + FIT["B"] / tokens ** FIT["beta"]


def _finish(params: float, tokens: float, gpu: str, num_gpus: int, mfu: float) -> Plan:
    if gpu not in GPUS:
        raise ConfigError(f"unknown GPU {gpu!r}; known: {', '.join(GPUS)}")
    if not 0 < mfu <= 1:
        raise ConfigError(f"mfu must be in (0, 1], got {mfu}")
    if num_gpus < 1:
        raise ConfigError(f"num_gpus must be at least 1, got {num_gpus}")
    flops = 6 * params * tokens
    seconds = flops / (GPUS[gpu] * 1e12 * mfu * num_gpus)
    return Plan(params, tokens, flops, predicted_loss(params, tokens), gpu, num_gpus, mfu, seconds / 3600)


def plan_for_compute(flops: float, gpu: str = "H100-SXM", num_gpus: int = 1, mfu: float = 0.4) -> Plan:
    """Compute-optimal N and D for a FLOP budget with D = 20 N."""
    if flops <= 0:
        raise ConfigError(f"compute budget must be positive, got {flops}")
    params = math.sqrt(flops / (6 * TOKENS_PER_PARAM))
    return _finish(params, TOKENS_PER_PARAM * params, gpu, num_gpus, mfu)


def plan_for_params(
    params: float, gpu: str = "H100-SXM", num_gpus: int = 1, mfu: float = 0.4, tokens: float | None = None
) -> Plan:
    """Compute-optimal data for a model size (or the cost of a chosen token count)."""
    if params <= 0:
        raise ConfigError(f"parameter count must be positive, got {params}")
    return _finish(params, tokens or TOKENS_PER_PARAM * params, gpu, num_gpus, mfu)
