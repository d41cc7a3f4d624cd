"""Flow-matching time schedule: x_t = (1 - t) * x_0 + t * noise, t = 1 is pure noise, velocity = noise - x_0."""

from __future__ import annotations

import torch


def shift_timesteps(t: torch.Tensor, shift: float) -> torch.Tensor:
    """The timestep shift ``s*t / (1 + (s-1)*t)``: s > 1 spends more steps at high noise."""
    return shift * t / (1 + (shift - 1) * t)


def training_timesteps(raw: torch.Tensor, shift: float) -> torch.Tensor:
    """Raw logit-normal draws (``-inf`` for clean conditioning images) -> t in [0, 1] (clean images get 0)."""
    return shift_timesteps(torch.sigmoid(raw), shift)


def sampling_timesteps(num_timesteps: int, shift: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """[num_timesteps] shifted grid from 1 to 0; a sampler takes num_timesteps - 1 steps between its points."""
    if num_timesteps < 2:
        raise ValueError(f"num_timesteps must be >= 2 (got {num_timesteps})")
    return shift_timesteps(torch.linspace(1, 0, num_timesteps, device=device), shift)
