"""The merge methods as pure functions of tensors, one parameter tensor at a time: what
`lmforge merge` applies to every tensor of the input models.

Task vectors are differences from a base, τᵢ = θᵢ − θ_base (Ilharco et al., 2023). Every method
computes in fp32; the caller casts the result back to the checkpoint's dtype.
"""

import torch


def linear(tensors: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Weighted average Σ wᵢθᵢ / Σ wᵢ (a "model soup", Wortsman et al., 2022)."""
    total = sum(weights)
    return sum(w * t.float() for w, t in zip(weights, tensors)) / total


def task_arithmetic(base: torch.Tensor, tensors: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """θ_base + Σ wᵢτᵢ: weight 0 gives the base back, a single model at weight 1 gives that model."""
    b = base.float()
    return b + sum(w * (t.float() - b) for w, t in zip(weights, tensors))


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-8) -> torch.Tensor:
    """Spherical interpolation between two tensors taken as vectors (Shoemake, 1985): the angle
    between their directions is divided at t, their norms carried along; nearly parallel tensors
    fall back to linear interpolation, where the formula divides by ~0."""
    x, y = a.float().flatten(), b.float().flatten()
    cos = torch.dot(x, y) / (x.norm() * y.norm()).clamp_min(eps)
    if cos.abs() > 1 - 1e-6:
        out = (1 - t) * x + t * y
    else:
        omega = torch.arccos(cos.clamp(-1, 1))
        out = (torch.sin((1 - t) * omega) * x + torch.sin(t * omega) * y) / torch.sin(omega)
    return out.reshape(a.shape)


def trim(tau: torch.Tensor, density: float) -> torch.Tensor:
    """TIES's first step: keep the `density` share of the task vector's entries largest in magnitude
    (ties at the threshold kept), zero the rest."""
    k = int(round(density * tau.numel()))
    if k >= tau.numel():
        return tau
    if k == 0:
        return torch.zeros_like(tau)
    threshold = tau.abs().flatten().kthvalue(tau.numel() - k + 1).values
    return torch.where(tau.abs() >= threshold, tau, torch.zeros_like(tau))


def ties(base: torch.Tensor, tensors: list[torch.Tensor], weights: list[float], density: float) -> torch.Tensor:
    """TIES-merging (Yadav et al., 2023): trim each task vector to its largest entries, elect each
    entry's sign as that of the weighted sum of the trimmed vectors, and average (weighted) only the
    entries that agree with it; the base plus that merged vector."""
    b = base.float()
    taus = torch.stack([w * trim(t.float() - b, density) for w, t in zip(weights, tensors)])
    sign = torch.sign(taus.sum(0))
    agree = (torch.sign(taus) == sign) & (taus != 0)
    w = torch.tensor(weights, dtype=torch.float32).reshape(-1, *([1] * b.dim()))
    mass = (agree * w).sum(0)
    merged = (taus * agree).sum(0) / torch.where(mass == 0, torch.ones_like(mass), mass)
    return b + merged


def dare(
    base: torch.Tensor, tensors: list[torch.Tensor], weights: list[float], density: float, generator: torch.Generator
) -> torch.Tensor:
    """DARE (Yu et al., 2024): drop each task-vector entry with probability 1 − density and rescale
    the kept ones by 1/density (their expectation unchanged), then task arithmetic."""
    b = base.float()
    out = b.clone()
    for w, t in zip(weights, tensors):
        keep = torch.rand(b.shape, generator=generator) < density
        out += w * (t.float() - b) * keep / density
    return out


def chat_vector(onto: torch.Tensor, base: torch.Tensor, chat: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """Chat vector (Huang et al., 2024): onto + w·(chat − base). An embedding or output matrix that
    tokenizer extension made longer (more rows in `onto`) gets the vector on the original tokens'
    rows only; the added tokens' rows stay as the adapted model learned them."""
    out = onto.float().clone()
    rows = base.shape[0]
    out[:rows] += weight * (chat.float() - base.float())
    return out
