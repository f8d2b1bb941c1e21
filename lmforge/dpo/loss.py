"""Preference losses on answer log-probabilities: DPO (Rafailov et al., 2023), conservative DPO
(label smoothing) and IPO (Azar et al., 2023) against a reference; ORPO and SimPO without one; KTO
on unpaired answers. Each is written as its paper defines it and checked against TRL's trainers on
the same model and batch (tests/test_dpo.py, tests/test_preference_losses.py). Log-probabilities
are summed over the answer tokens (DPO, KTO) or averaged per answer token (IPO, ORPO, SimPO), as
TRL does."""

import torch
import torch.nn.functional as F


def preference_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair losses and the implicit rewards beta * (log pi - log pi_ref) of both answers."""
    logits = (chosen - rejected) - (ref_chosen - ref_rejected)
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss {loss_type!r}")
    return losses, beta * (chosen - ref_chosen).detach(), beta * (rejected - ref_rejected).detach()


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, stable at both ends (Mächler, 2012)."""
    return torch.where(x > -0.6931, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def odds_ratio_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ORPO's odds-ratio term (Hong et al., 2024) on per-token average log-probs: -β·log σ(log
    odds(chosen) - log odds(rejected)), odds = p / (1 - p); it is added to the chosen answers' NLL,
    with no reference model. Rewards β·(average log p), as TRL reports them."""
    log_odds = (chosen - rejected) - (log1mexp(chosen) - log1mexp(rejected))
    return -beta * F.logsigmoid(log_odds), beta * chosen.detach(), beta * rejected.detach()


def simpo_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, beta: float, gamma: float, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimPO (Meng et al., 2024): -log σ(β·(avg log p(chosen) - avg log p(rejected)) - γ), the
    length-normalised likelihood as the reward and a target margin γ; no reference model."""
    logits = (chosen - rejected) - gamma / beta
    losses = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    return losses, beta * chosen.detach(), beta * rejected.detach()


def kto_loss(
    logps: torch.Tensor,
    ref_logps: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KTO (Ethayarajh et al., 2024) on unpaired answers: a desirable answer's loss is
    1 - σ(β·(r - z)), an undesirable one's 1 - σ(β·(z - r)), with r = log π/π_ref of the answer and
    z the reference point, an estimate of KL(π || π_ref) made from mismatched prompt/answer pairs
    (detached, at least 0). Returns per-answer losses (desirable ones first, as TRL orders them)
    and the rewards β·r in the input order."""
    ratio = logps - ref_logps
    good = desirable_weight * (1 - torch.sigmoid(beta * (ratio[desirable] - kl)))
    bad = undesirable_weight * (1 - torch.sigmoid(beta * (kl - ratio[~desirable])))
    return torch.cat([good, bad]), beta * ratio.detach()


def kl_reference_point(kl_logps: torch.Tensor, ref_kl_logps: torch.Tensor) -> torch.Tensor:
    """KTO's z: the batch mean of log π/π_ref over mismatched pairs, detached and clamped at 0."""
    return (kl_logps - ref_kl_logps).mean().detach().clamp(min=0)
