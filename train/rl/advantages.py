"""Group-relative advantages: each reward against its group's mean, scaled by the group's std (or the batch's).

Rewards arrive as [groups, G] with NaN for samples whose reward was dropped (judge failure): those get no advantage
and no loss. Groups with fewer than two scored members or (near) zero spread carry no signal and are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

STD_EPS = 1e-4  # Flow-GRPO's: (r - mean) / (std + 1e-4)


@dataclass
class Advantages:
    values: torch.Tensor  # [groups, G] float32, 0 where masked
    mask: torch.Tensor  # [groups, G] bool: scored member of a kept group
    kept_groups: torch.Tensor  # [groups] bool
    zero_variance_groups: int  # groups dropped for no spread (or < 2 scored members)
    dropped_samples: int  # members without a reward


def group_advantages(rewards: torch.Tensor, global_std: bool = False, clip: float = 5.0,
                     min_group_std: float = 1e-6) -> Advantages:
    """Advantages of rewards [groups, G] (NaN = dropped), computed in float64 (so a group's mean is 0 to ~1e-15)."""
    rewards = rewards.double()
    scored = ~torch.isnan(rewards)
    count = scored.sum(dim=1)
    filled = torch.where(scored, rewards, 0.0)
    mean = filled.sum(dim=1) / count.clamp(min=1)
    centered = torch.where(scored, rewards - mean[:, None], 0.0)
    group_std = (centered.pow(2).sum(dim=1) / count.clamp(min=1)).sqrt()
    kept = (count >= 2) & (group_std > min_group_std)
    if global_std:
        values = rewards[scored]
        std = values.std(unbiased=False) if values.numel() > 1 else values.new_tensor(0.0)
        std = std.expand_as(group_std)
    else:
        std = group_std
    values = (centered / (std[:, None] + STD_EPS)).clamp(-clip, clip)
    mask = scored & kept[:, None]
    return Advantages(values=torch.where(mask, values, 0.0).float(), mask=mask, kept_groups=kept,
                      zero_variance_groups=int((~kept).sum()), dropped_samples=int((~scored).sum()))


def all_gather_rows(local: torch.Tensor) -> torch.Tensor:
    """[n, ...] on every rank (the same n everywhere) -> [world * n, ...] in rank order."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return local
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts)
