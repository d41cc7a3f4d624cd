"""Learning-rate schedule: linear warm-up, then constant or cosine decay to ``min_lr`` (BAGEL's two options)."""

from __future__ import annotations

import math
from typing import Literal

import torch


def lr_at_step(step: int, *, lr: float, min_lr: float, warmup_steps: int, total_steps: int,
               schedule: Literal["constant", "cosine"]) -> float:
    """Learning rate for optimizer step ``step`` (0-based).

    Warm-up rises linearly from lr/warmup_steps to lr over the first ``warmup_steps`` steps; ``cosine`` then
    decays from lr to ``min_lr`` at ``total_steps``; ``constant`` holds lr.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, value: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = value
