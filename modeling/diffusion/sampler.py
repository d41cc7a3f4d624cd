"""Integration of the flow from noise (t = 1) to data (t = 0): Euler (the ODE), or Euler with a window of
stochastic steps whose samples and log-probabilities are recorded (Flow-GRPO rollouts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .sde import StepDistribution, euler_step, gaussian_logprob, sample_step

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
        t = timesteps[i]
        v = velocity(x, t, i)
        if trajectory is not None:
            trajectory.timesteps.append(t)
            trajectory.states.append(x)
            trajectory.velocities.append(v)
        x = euler_step(x, v, t, timesteps[i + 1])
        if on_step is not None:
            on_step(i + 1, timesteps.numel() - 1)
    return x


@dataclass
class WindowRecord:
    """What a GRPO update needs from a rollout: per SDE step its index, state, sampled next state and log-prob."""

    steps: list[int] = field(default_factory=list)
    states: list[torch.Tensor] = field(default_factory=list)  # x_j [B, N, C] float32
    next_states: list[torch.Tensor] = field(default_factory=list)  # x_{j+1} [B, N, C] float32
    logprobs: list[torch.Tensor] = field(default_factory=list)  # [B] float32


StepFn = Callable[[torch.Tensor, torch.Tensor, int], StepDistribution]  # (x [B, N, C], velocity, step)


def sde_window_sample(velocity: VelocityFn, x_init: torch.Tensor, timesteps: torch.Tensor, window: list[int],
                      step_distribution: StepFn, draw_noise: Callable[[int], torch.Tensor]
                      ) -> tuple[torch.Tensor, WindowRecord]:
    """Denoise x [B, N, C] (float32) over ``timesteps``: stochastic steps at the indexes in ``window``, Euler
    elsewhere. ``step_distribution(x, v, step)`` gives the step's Gaussian; ``draw_noise(step)`` its N(0, I) draw."""
    x, record, in_window = x_init.float(), WindowRecord(), set(window)
    for i in range(timesteps.numel() - 1):
        v = velocity(x, timesteps[i], i)
        if i not in in_window:
            x = euler_step(x, v, timesteps[i], timesteps[i + 1])
            continue
        dist = step_distribution(x, v, i)
        x_next = sample_step(dist, draw_noise(i))
        record.steps.append(i)
        record.states.append(x)
        record.next_states.append(x_next)
        record.logprobs.append(gaussian_logprob(x_next, dist))
        x = x_next
    return x, record
