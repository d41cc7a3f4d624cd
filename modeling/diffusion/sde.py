"""Stochastic steps of the flow sampler (the Flow-GRPO policy), their Gaussian log-probability and the KL term.

A step goes from noise level ``sigma`` to ``sigma_next < sigma`` (the schedule's t: 1 = noise, 0 = data) given the
velocity ``v`` at ``x``. Both kinds are Gaussian, ``x_next ~ N(mean, std^2 I)`` with one std for every element:

- ``flow_sde`` (Flow-GRPO): noise scale ``a * sqrt(sigma / (1 - sigma))`` (at sigma = 1 the denominator uses the
  schedule's second point, as Flow-GRPO does), mean ``x - (v + scale^2 / (2 sigma) * (x + (1 - sigma) v)) * dt``
  with ``dt = sigma - sigma_next > 0`` (the score-corrected drift), std ``scale * sqrt(dt)``. With a = 0 the mean is
  the Euler step bit for bit.
- ``cps`` (coefficient-preserving): std ``sigma_next * sin(a * pi / 2)``, mean
  ``(1 - sigma_next) x0_hat + sqrt(sigma_next^2 - std^2) x1_hat``, so the sample's total noise coefficient is exactly
  sigma_next. Zero std at the final step (sigma_next = 0): never trained there.

Everything runs in float32: the log-prob of a step is a mean over the latent elements (so ratios and clip ranges are
per-element, ~1e-5), and bf16 loses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SDE_KINDS = ("flow_sde", "cps")


@dataclass(frozen=True)
class StepDistribution:
    mean: torch.Tensor  # [..., N, C] float32
    std: torch.Tensor  # scalar float32 (the same for every element)


def euler_step(x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """The ODE step x - v * (sigma - sigma_next), in x's dtype (``euler_sample``'s step)."""
    return x - v.to(x.dtype) * (sigma - sigma_next)


def flow_sde_noise_scale(sigma: torch.Tensor, noise_level: float, sigma_max: torch.Tensor) -> torch.Tensor:
    """a * sqrt(sigma / (1 - sigma)); at sigma = 1 the denominator uses ``sigma_max`` (the schedule's second point)."""
    denominator = 1 - torch.where(sigma >= 1, sigma_max, sigma)
    return noise_level * torch.sqrt(sigma / denominator)


def flow_sde_step(x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
                  noise_level: float, sigma_max: torch.Tensor) -> StepDistribution:
    x, v = x.float(), v.float()
    sigma, sigma_next, sigma_max = sigma.float(), sigma_next.float(), sigma_max.float()
    scale = flow_sde_noise_scale(sigma, noise_level, sigma_max)
    dt = sigma - sigma_next
    drift = v + scale ** 2 / (2 * sigma) * (x + (1 - sigma) * v)  # = v exactly when scale = 0
    return StepDistribution(x - drift * dt, scale * torch.sqrt(dt))


def cps_step(x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
             noise_level: float) -> StepDistribution:
    x, v = x.float(), v.float()
    sigma, sigma_next = sigma.float(), sigma_next.float()
    x0_hat, x1_hat = x - sigma * v, x + (1 - sigma) * v
    std = sigma_next * math.sin(noise_level * math.pi / 2)
    mean = (1 - sigma_next) * x0_hat + torch.sqrt((sigma_next ** 2 - std ** 2).clamp(min=0)) * x1_hat
    return StepDistribution(mean, std)


def step_distribution(kind: str, x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
                      noise_level: float, sigma_max: torch.Tensor) -> StepDistribution:
    if kind == "flow_sde":
        return flow_sde_step(x, v, sigma, sigma_next, noise_level, sigma_max)
    if kind == "cps":
        return cps_step(x, v, sigma, sigma_next, noise_level)
    raise ValueError(f"unknown SDE kind {kind!r}; choose one of {SDE_KINDS}")


def sample_step(dist: StepDistribution, noise: torch.Tensor) -> torch.Tensor:
    """x_next = mean + std * noise (noise ~ N(0, I), same shape as the mean)."""
    return dist.mean + dist.std * noise.float()


def gaussian_logprob(x_next: torch.Tensor, dist: StepDistribution) -> torch.Tensor:
    """log N(x_next; mean, std^2) averaged over the elements of each sample: [B, N, C] -> [B] float32.

    ``x_next`` is the stored sample (no gradient); the gradient flows through the mean."""
    std = dist.std
    per_element = -((x_next.float().detach() - dist.mean) ** 2) / (2 * std ** 2) - torch.log(std) \
        - 0.5 * math.log(2 * math.pi)
    return per_element.flatten(1).mean(dim=1)


def gaussian_kl(dist: StepDistribution, reference_mean: torch.Tensor) -> torch.Tensor:
    """KL(policy || reference) of two Gaussians with the same std, per element, averaged per sample: [B].

    This is the exact per-element KL, (mean - ref)^2 / (2 std^2) with std = scale * sqrt(dt). Flow-GRPO's code divides
    by 2 scale^2 instead (no dt, its issue #78), i.e. its term is dt times this one: a beta taken from its configs
    must be multiplied by that step's dt to mean the same here."""
    return ((dist.mean - reference_mean.float()) ** 2 / (2 * dist.std ** 2)).flatten(1).mean(dim=1)
