"""DPO's losses (Rafailov et al., 2023), conservative DPO (label smoothing) and IPO (Azar et al.,
2023), on sequence log-probabilities summed over the answer tokens only (IPO: averaged per token,
as TRL does)."""

import torch
import torch.nn.functional as F

from lmforge.sft.data import IGNORE


def sequence_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of log p over each row's label tokens, number of those tokens), fp32."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    targets = batch["labels"][:, 1:]
    mask = targets != IGNORE
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * mask).sum(-1), mask.sum(-1)


def preference_loss(chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor,
                    ref_rejected: torch.Tensor, beta: float, loss_type: str = "sigmoid",
                    label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair losses and the implicit rewards beta * (log pi - log pi_ref) of both answers."""
    logits = (chosen - rejected) - (ref_chosen - ref_rejected)
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss {loss_type!r}")
    return losses, beta * (chosen - ref_chosen).detach(), beta * (rejected - ref_rejected).detach()
