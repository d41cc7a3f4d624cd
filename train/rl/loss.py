"""The GRPO objective of one SDE step: PPO-clip on the per-element-mean log-prob ratio, plus an optional KL term."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class StepLoss:
    per_sample: torch.Tensor  # [B] policy loss (+ beta * KL) per member, differentiable
    ratio: torch.Tensor  # [B] detached
    clipped: torch.Tensor  # [B] bool: the ratio lies outside [1 - clip_low, 1 + clip_high]
    kl: torch.Tensor  # [B] detached (zeros without a reference)


def ppo_clip_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, clip_low: float,
                  clip_high: float, kl: torch.Tensor | None = None, beta: float = 0.0) -> StepLoss:
    """max(-A r, -A clip(r, 1 - clip_low, 1 + clip_high)) + beta KL per sample, r = exp(logp_new - logp_old).

    The clipped term takes over (zero policy gradient) once the ratio has moved past the range in the direction the
    advantage pushes it; moving the other way is never clipped (PPO's pessimistic bound)."""
    ratio = torch.exp(logp_new - logp_old)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    if kl is not None and beta:
        loss = loss + beta * kl
    outside = (ratio < 1.0 - clip_low) | (ratio > 1.0 + clip_high)
    kl_value = kl.detach() if kl is not None else torch.zeros_like(ratio)
    return StepLoss(loss, ratio.detach(), outside.detach(), kl_value)
