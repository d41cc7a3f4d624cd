"""Euler integration of the flow ODE from noise (t = 1) to data (t = 0)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

VelocityFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]  # (x_t [N, C], t, step) -> velocity [N, C]


@dataclass
class Trajectory:
    timesteps: list[torch.Tensor] = field(default_factory=list)  # t of each step
    states: list[torch.Tensor] = field(default_factory=list)  # x_t entering each step
    velocities: list[torch.Tensor] = field(default_factory=list)  # velocity used at each step


def euler_sample(velocity: VelocityFn, x_init: torch.Tensor, timesteps: torch.Tensor,
                 trajectory: Trajectory | None = None, on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """x <- x - v(x, t_i) * (t_i - t_{i+1}) over the grid ``timesteps`` [S] (S - 1 steps); returns x at t_{S-1}."""
    x = x_init
    for i in range(timesteps.numel() - 1):
        t, dt = timesteps[i], timesteps[i] - timesteps[i + 1]
        v = velocity(x, t, i)
        if trajectory is not None:
            trajectory.timesteps.append(t)
            trajectory.states.append(x)
            trajectory.velocities.append(v)
        x = x - v.to(x.dtype) * dt
        if on_step is not None:
            on_step(i + 1, timesteps.numel() - 1)
    return x
