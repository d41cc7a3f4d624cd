"""Group rollouts on the tiny checkpoint: one batched forward over a shared key/value store equals G separate
queries; the update's log-prob of the stored samples equals the rollout's (ratio exactly 1 in fp32)."""

from __future__ import annotations

import pytest
import torch

from inference.inferencer import BagelInferencer
from inference.settings import InferenceSettings
from modeling.diffusion.sde_window import WindowSpec
from train.rl.checks import CHECK_COT, check_image
from train.rl.policy import GroupPolicy, PolicySpec
from train.rl.prompts import EditPrompt
from train.rl.rollout import RolloutSettings, build_contexts, latent_grid, rollout_group

TRANSFORMS = {"vae_transform": (32, 32, 16), "vit_transform": (28, 28, 14)}


@pytest.fixture(scope="module")
def inferencer(tiny_bundle):
    torch.set_num_threads(1)
    return BagelInferencer(tiny_bundle)


def _settings(cfg: bool = True, group: int = 3, cot_source: str = "dataset") -> RolloutSettings:
    return RolloutSettings(group_size=group, num_timesteps=7, window=WindowSpec(2, "random", 0, 4),
                           policy=PolicySpec(noise_level=1.0, cfg=cfg), cot_source=cot_source,
                           inference=InferenceSettings(max_think_token_n=12, **TRANSFORMS))


def _prompt() -> EditPrompt:
    return EditPrompt("p", check_image(64), "Make the red square blue.", CHECK_COT)


def test_group_query_over_one_store_equals_separate_queries(inferencer) -> None:
    model = inferencer.model
    contexts = build_contexts(inferencer, _prompt(), _settings(), 0, CHECK_COT)
    caches = list(contexts.branches(4.0, 2.0).values())
    assert len(caches) == 3
    grid = latent_grid(inferencer, contexts)
    x = torch.randn(4, grid[0] * grid[1], 64, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(0.8)
    plan = model.plan_group_query(caches, grid, 4)
    stored = sum(kv.keys.shape[0] for kv in plan.store[:1])
    assert stored == sum(c.length for c in caches) + 3 * 4 * (grid[0] * grid[1] + 2)  # each context stored once
    with torch.no_grad():
        grouped = model.group_velocity(plan, x, t)  # [3 contexts, 4 members, N, 64]
        single = model.plan_image_query(caches, grid)
        separate = torch.stack([model.predict_velocity(single, x[g], t) for g in range(4)], dim=1)
    torch.testing.assert_close(grouped, separate, rtol=0, atol=1e-5)


@pytest.mark.parametrize("cfg", [True, False])
def test_batched_group_rollout_equals_one_at_a_time(inferencer, cfg: bool) -> None:
    settings = _settings(cfg=cfg)
    batched = rollout_group(inferencer, _prompt(), settings, 0, seed=11)
    single = rollout_group(inferencer, _prompt(), settings, 0, seed=11, one_at_a_time=True)
    per_edit = rollout_group(inferencer, _prompt(), settings, 0, seed=11, context_per_member=True)
    torch.testing.assert_close(per_edit.final_latents, single.final_latents, rtol=0, atol=0)  # same context
    assert batched.window == single.window and len(batched.window) == 2
    assert batched.states.shape == (2, 3, batched.grid_hw[0] * batched.grid_hw[1], 64)
    torch.testing.assert_close(batched.final_latents, single.final_latents, rtol=0, atol=1e-5)
    torch.testing.assert_close(batched.next_states, single.next_states, rtol=0, atol=1e-5)
    torch.testing.assert_close(batched.old_logprobs, single.old_logprobs, rtol=0, atol=1e-6)
    assert len(batched.images) == 3 and batched.images[0].size == (32, 32)
    members = batched.final_latents.flatten(1)
    assert (members[0] - members[1]).abs().max() > 1e-2  # members differ (their own noise)


def test_update_logprob_reproduces_the_rollout_exactly(inferencer) -> None:
    settings = _settings()
    rollout = rollout_group(inferencer, _prompt(), settings, 3, seed=5)
    contexts = build_contexts(inferencer, rollout.prompt, settings, rollout.seed, rollout.cot_text)
    policy = GroupPolicy(inferencer.model, contexts, rollout.grid_hw, 3, settings.policy,
                         settings.timesteps(inferencer.device))
    for w, step in enumerate(rollout.window):
        logp, _ = policy.logprob(rollout.states[w], rollout.next_states[w], step)
        assert logp.requires_grad
        assert torch.equal(logp.detach(), rollout.old_logprobs[w])  # ratio exactly 1


def test_model_written_cot_is_reused_verbatim(inferencer) -> None:
    settings = _settings(cot_source="model")
    rollout = rollout_group(inferencer, EditPrompt("p", check_image(64), "Make it blue."), settings, 0, seed=2)
    assert isinstance(rollout.cot_text, str) and rollout.cot_text
    contexts = build_contexts(inferencer, rollout.prompt, settings, rollout.seed, rollout.cot_text)
    policy = GroupPolicy(inferencer.model, contexts, rollout.grid_hw, 3, settings.policy,
                         settings.timesteps(inferencer.device))
    logp, _ = policy.logprob(rollout.states[0], rollout.next_states[0], rollout.window[0])
    assert torch.equal(logp.detach(), rollout.old_logprobs[0])


def test_dataset_cot_required_when_selected(inferencer) -> None:
    with pytest.raises(ValueError, match="no dataset CoT"):
        rollout_group(inferencer, EditPrompt("p", check_image(64), "x"), _settings(), 0, seed=0)
