"""The stochastic sampler steps of Flow-GRPO: moments against draws, marginals, the ODE limit, log-prob and KL."""

from __future__ import annotations

import math

import pytest
import torch

from modeling.diffusion.sampler import euler_sample, sde_window_sample
from modeling.diffusion.schedule import sampling_timesteps
from modeling.diffusion.sde import (cps_step, euler_step, flow_sde_noise_scale, flow_sde_step, gaussian_kl,
                                    gaussian_logprob, sample_step, step_distribution)
from modeling.diffusion.sde_window import WindowSpec

DRAWS = 10_000


def _t(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float32)


def test_flow_sde_mean_and_std_match_draws_and_the_formula() -> None:
    gen = torch.Generator().manual_seed(0)
    x, v = torch.randn(1, 64, generator=gen), torch.randn(1, 64, generator=gen)
    sigma, sigma_next, a = 0.8, 0.7, 0.7
    dist = flow_sde_step(x, v, _t(sigma), _t(sigma_next), a, _t(0.95))
    scale = a * math.sqrt(sigma / (1 - sigma))
    dt = sigma - sigma_next
    expected_mean = x + (v + scale ** 2 / (2 * sigma) * (x + (1 - sigma) * v)) * (sigma_next - sigma)
    torch.testing.assert_close(dist.mean, expected_mean, rtol=1e-6, atol=1e-6)
    assert float(dist.std) == pytest.approx(scale * math.sqrt(dt), rel=1e-6)
    samples = sample_step(dist, torch.randn(DRAWS, 64, generator=gen))  # [DRAWS, 64]
    # 10k draws: the mean's standard error is std/100, the std's about std/141
    assert (samples.mean(0) - dist.mean[0]).abs().max() < 5 * float(dist.std) / 100
    assert (samples.std(0) / dist.std - 1).abs().max() < 0.05


def test_flow_sde_first_step_uses_the_second_sigma_in_the_denominator() -> None:
    timesteps = sampling_timesteps(15, 3.0)
    scale = flow_sde_noise_scale(timesteps[0], 1.3, timesteps[1])
    assert float(timesteps[0]) == 1.0 and math.isfinite(float(scale))
    assert float(scale) == pytest.approx(1.3 * math.sqrt(1.0 / (1.0 - float(timesteps[1]))), rel=1e-6)


@pytest.mark.parametrize("kind,noise_level", [("flow_sde", 0.7), ("cps", 0.8)])
def test_step_keeps_the_marginal_of_a_point_mass(kind: str, noise_level: float) -> None:
    """Data = one point x0: x_sigma ~ N((1 - sigma) x0, sigma^2) and the exact velocity is (x - x0) / sigma. A step
    from that marginal must land on N((1 - sigma') x0, sigma'^2): the score correction has the right sign and size."""
    gen = torch.Generator().manual_seed(1)
    x0 = torch.full((1, 16), 0.5)
    sigma, sigma_next = 0.6, 0.55
    x = (1 - sigma) * x0 + sigma * torch.randn(DRAWS, 16, generator=gen)
    v = (x - x0) / sigma
    dist = step_distribution(kind, x, v, _t(sigma), _t(sigma_next), noise_level, _t(0.95))
    out = sample_step(dist, torch.randn(DRAWS, 16, generator=gen))
    assert (out.mean(0) - (1 - sigma_next) * x0[0]).abs().max() < 0.02
    assert (out.std(0) / sigma_next - 1).abs().max() < 0.04


def test_cps_lands_exactly_at_the_next_noise_level() -> None:
    """With the exact velocity of x = (1 - s) x0 + s e0, CPS writes x' = (1 - s') x0 + c e0 + std e with
    c^2 + std^2 = s'^2: the sample's noise coefficient is exactly sigma'."""
    gen = torch.Generator().manual_seed(2)
    x0, e0 = torch.randn(1, 32, generator=gen), torch.randn(1, 32, generator=gen)
    sigma, sigma_next = 0.9, 0.6
    x = (1 - sigma) * x0 + sigma * e0
    dist = cps_step(x, e0 - x0, _t(sigma), _t(sigma_next), 0.8)
    coefficient = (dist.mean - (1 - sigma_next) * x0) / e0
    torch.testing.assert_close(coefficient ** 2 + dist.std ** 2, torch.full_like(coefficient, sigma_next ** 2),
                               rtol=1e-5, atol=1e-6)
    assert float(dist.std) == pytest.approx(sigma_next * math.sin(0.8 * math.pi / 2), rel=1e-6)


def test_noise_level_zero_is_the_euler_step_bit_for_bit() -> None:
    gen = torch.Generator().manual_seed(3)
    timesteps = sampling_timesteps(8, 3.0)
    x, v = torch.randn(3, 16, 64, generator=gen), torch.randn(3, 16, 64, generator=gen)
    for i in range(timesteps.numel() - 1):
        dist = flow_sde_step(x, v, timesteps[i], timesteps[i + 1], 0.0, timesteps[1])
        assert torch.equal(dist.mean, euler_step(x, v, timesteps[i], timesteps[i + 1])), i
        assert float(dist.std) == 0.0


def _velocity(x: torch.Tensor, t: torch.Tensor, _step: int) -> torch.Tensor:
    return torch.sin(3 * x) * t + 0.1  # any deterministic field


def test_window_sampler_is_euler_outside_the_window_and_at_noise_zero() -> None:
    timesteps = sampling_timesteps(9, 3.0)
    x = torch.randn(2, 8, 4, generator=torch.Generator().manual_seed(4))
    euler = euler_sample(_velocity, x, timesteps)
    plain, record = sde_window_sample(_velocity, x, timesteps, [], lambda *_: None, lambda _s: None)
    assert torch.equal(plain, euler) and record.steps == []

    def ode(x_, v, i):
        return step_distribution("flow_sde", x_, v, timesteps[i], timesteps[i + 1], 0.0, timesteps[1])

    zero, record = sde_window_sample(_velocity, x, timesteps, [0, 1, 2], ode, lambda _s: torch.randn_like(x))
    assert torch.equal(zero, euler) and record.steps == [0, 1, 2]


def test_window_sampler_records_states_samples_and_logprobs() -> None:
    timesteps = sampling_timesteps(9, 3.0)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 8, 4, generator=gen)
    noises = {i: torch.randn(2, 8, 4, generator=gen) for i in range(8)}

    def sde(x_, v, i):
        return step_distribution("flow_sde", x_, v, timesteps[i], timesteps[i + 1], 1.0, timesteps[1])

    final, record = sde_window_sample(_velocity, x, timesteps, [2, 3], sde, noises.__getitem__)
    assert record.steps == [2, 3] and len(record.states) == 2 and record.logprobs[0].shape == (2,)
    dist = sde(record.states[0], _velocity(record.states[0], timesteps[2], 2), 2)
    torch.testing.assert_close(record.next_states[0], dist.mean + dist.std * noises[2])
    assert torch.equal(record.states[1], record.next_states[0])
    assert torch.equal(record.logprobs[0], gaussian_logprob(record.next_states[0], dist))
    assert final.shape == x.shape and not torch.equal(final, euler_sample(_velocity, x, timesteps))


def test_logprob_is_the_per_element_mean_gaussian_density() -> None:
    gen = torch.Generator().manual_seed(6)
    x, v, x_next = (torch.randn(4, 10, 6, generator=gen) for _ in range(3))
    dist = flow_sde_step(x, v, _t(0.7), _t(0.6), 1.3, _t(0.95))
    closed = torch.distributions.Normal(dist.mean.double(), dist.std.double()).log_prob(x_next.double())
    torch.testing.assert_close(gaussian_logprob(x_next, dist).double(), closed.flatten(1).mean(1), rtol=0,
                               atol=1e-6)


def test_kl_is_zero_at_the_reference_and_the_exact_gaussian_kl_otherwise() -> None:
    gen = torch.Generator().manual_seed(7)
    dist = flow_sde_step(torch.randn(2, 5, 3, generator=gen), torch.randn(2, 5, 3, generator=gen), _t(0.7),
                         _t(0.6), 1.0, _t(0.95))
    assert torch.equal(gaussian_kl(dist, dist.mean.clone()), torch.zeros(2))
    shifted = dist.mean + 0.01
    p = torch.distributions.Normal(dist.mean.double(), dist.std.double())
    q = torch.distributions.Normal(shifted.double(), dist.std.double())
    torch.testing.assert_close(gaussian_kl(dist, shifted).double(),
                               torch.distributions.kl_divergence(p, q).flatten(1).mean(1), rtol=1e-5, atol=0)


def test_window_placements() -> None:
    spec = WindowSpec(size=3, placement="fixed", range_start=1, range_end=7)
    assert spec.steps(0) == spec.steps(99) == [1, 2, 3]
    random = WindowSpec(size=3, placement="random", range_start=0, range_end=7)
    starts = {random.steps(0, torch.Generator().manual_seed(s))[0] for s in range(200)}
    assert starts == set(range(5))  # every start whose window fits in [0, 7)
    assert random.steps(0, torch.Generator().manual_seed(5)) == random.steps(9, torch.Generator().manual_seed(5))
    sliding = WindowSpec(size=2, placement="sliding", range_start=0, range_end=4, slide_every=10)
    assert [sliding.steps(i)[0] for i in (0, 9, 10, 25, 30, 40)] == [0, 0, 1, 2, 0, 1]


@pytest.mark.parametrize("spec,message", [
    (WindowSpec(size=3, range_start=0, range_end=14), "never stochastic"),
    (WindowSpec(size=4, range_start=2, range_end=5), "does not fit"),
    (WindowSpec(size=2, placement="everywhere"), "placement"),
])
def test_window_validation(spec: WindowSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec.validate(14)
