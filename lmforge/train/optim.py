"""The optimizer of every training stage: AdamW with weight decay on matrices only.

Norms and biases get no decay, as in GPT-2/Llama; only parameters that train are given to it
(a LoRA run hands it the adapter's). Token embeddings get their own group so continued
pretraining can move them more slowly (`embedding_lr_scale` < 1) than the rest; the loop scales
each group's rate by its "lr_scale". The fused implementation (one kernel over all parameters)
exists on CPU and GPU since torch 2.4.
"""

import torch


def make_optimizer(
    model: torch.nn.Module,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
    embedding_lr_scale: float = 1.0,
    b_lr_scale: float = 1.0,
) -> torch.optim.AdamW:
    """`b_lr_scale`: LoRA+, the rate of LoRA's B matrices relative to the rest."""
    embed = {id(p) for p in model.get_input_embeddings().parameters()} if embedding_lr_scale != 1 else set()
    lora_b = {id(p) for n, p in model.named_parameters() if "lora_B" in n} if b_lr_scale != 1 else set()
    params = [p for p in model.parameters() if p.requires_grad]
    plain = [p for p in params if p.dim() >= 2 and id(p) not in embed | lora_b]
    groups = [
        {"params": plain, "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        {"params": [p for p in params if id(p) in embed], "weight_decay": weight_decay, "lr_scale": embedding_lr_scale},
        {"params": [p for p in params if id(p) in lora_b], "weight_decay": weight_decay, "lr_scale": b_lr_scale},
    ]
    device = params[0].device
    return torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=lr, betas=betas, eps=eps, fused=device.type in ("cuda", "cpu")
    )
