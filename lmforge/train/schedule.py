"""Learning-rate schedules as pure functions of the step, so resuming needs no scheduler state."""

import math

from lmforge.recipe import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay, WSD (warmup-stable-decay), or constant.

    WSD keeps the peak rate until the last `wsd_decay_fraction` of training and then decays
    linearly (MiniCPM, DeepSeek); it lets a run be extended from any stable-phase checkpoint.
    """
    peak, floor = cfg.lr, cfg.lr * cfg.min_lr_ratio
    if step < cfg.warmup_steps:
        return peak * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return peak
    if cfg.schedule == "cosine":
        span = max(1, cfg.max_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))
    decay_start = cfg.max_steps - int(cfg.wsd_decay_fraction * cfg.max_steps)
    if step < decay_start:
        return peak
    progress = (step - decay_start) / max(1, cfg.max_steps - decay_start)
    return peak - (peak - floor) * min(1.0, progress)
