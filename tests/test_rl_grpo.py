"""GRPO pieces without a model: the clipped loss, group advantages, rewards by name, scoring, edit prompts."""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
import torch
from PIL import Image

from data.shapes_edit.export import write_benchmark
from train.rl.advantages import group_advantages
from train.rl.loss import ppo_clip_loss
from train.rl.prompts import ShardedPromptStream, row_to_prompt
from train.rl.reward_calls import GroupScorer, group_requests, reward_matrix
from train.rl.rewards import registry
from train.rl.rewards.base import RewardResult
from train.rl.rewards.programmatic import ProgrammaticReward
from data.render import SampleError

EPS = 1e-5


def _loss_grad(ratio: float, advantage: float) -> float:
    logp = torch.tensor([float(torch.log(torch.tensor(ratio)))], requires_grad=True)
    ppo_clip_loss(logp, torch.zeros(1), torch.tensor([advantage]), EPS, EPS).per_sample.sum().backward()
    return float(logp.grad)


def test_clipped_loss_has_no_gradient_past_the_range_in_the_advantage_direction() -> None:
    assert _loss_grad(1 + 3 * EPS, +1.0) == 0.0  # already pushed up enough
    assert _loss_grad(1 - 3 * EPS, -1.0) == 0.0  # already pushed down enough
    assert _loss_grad(1.0, +1.0) == pytest.approx(-1.0)  # inside: d(-A r)/d logp = -A r
    assert _loss_grad(1.0, -2.0) == pytest.approx(2.0)
    assert _loss_grad(1 - 3 * EPS, +1.0) == pytest.approx(-(1 - 3 * EPS))  # wrong side: never clipped
    assert _loss_grad(1 + 3 * EPS, -1.0) == pytest.approx(1 + 3 * EPS)


def test_clip_fraction_counts_ratios_outside_the_range() -> None:
    ratios = torch.tensor([1.0, 1 + 2 * EPS, 1 - 2 * EPS, 1 + EPS / 2])
    out = ppo_clip_loss(ratios.log(), torch.zeros(4), torch.ones(4), EPS, EPS)
    assert out.clipped.tolist() == [False, True, True, False]


def test_kl_term_adds_beta_times_kl() -> None:
    kl = torch.tensor([0.5, 0.0])
    out = ppo_clip_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), EPS, EPS, kl=kl, beta=0.1)
    assert out.per_sample.tolist() == pytest.approx([0.05, 0.0])


def test_group_advantages_are_zero_mean_per_group_and_drop_empty_groups() -> None:
    rewards = torch.tensor([[1.0, 2.0, 3.0, 6.0],
                            [5.0, 5.0, 5.0, 5.0],  # no spread: dropped
                            [2.0, float("nan"), 4.0, 0.0],  # one judge failure
                            [float("nan"), 7.0, float("nan"), float("nan")]])  # one scored member: dropped
    adv = group_advantages(rewards)
    assert adv.kept_groups.tolist() == [True, False, True, False]
    assert adv.zero_variance_groups == 2 and adv.dropped_samples == 4
    assert adv.mask.tolist()[2] == [True, False, True, True] and not adv.mask[1].any()
    for g in (0, 2):
        assert abs(float(adv.values[g][adv.mask[g]].mean())) < 1e-6
    expected = (torch.tensor([1.0, 2.0, 3.0, 6.0]) - 3.0) / (torch.tensor([1.0, 2.0, 3.0, 6.0]).std(
        unbiased=False) + 1e-4)
    torch.testing.assert_close(adv.values[0], expected)
    assert float(adv.values[2][1]) == 0.0 and not adv.values[1].any()


def test_global_std_and_clipping() -> None:
    rewards = torch.tensor([[0.0, 10.0], [4.0, 6.0]])
    per_group, global_std = group_advantages(rewards), group_advantages(rewards, global_std=True)
    std = float(rewards.flatten().std(unbiased=False))
    assert per_group.values[1].tolist() == pytest.approx([-1.0, 1.0], abs=1e-3)
    assert global_std.values[1].tolist() == pytest.approx([-1 / (std + 1e-4), 1 / (std + 1e-4)], rel=1e-5)
    clipped = group_advantages(torch.tensor([[0.0] * 30 + [1.0]]), clip=2.0)
    assert float(clipped.values.max()) == 2.0


def test_programmatic_reward_and_registry() -> None:
    reward = registry.build_reward("programmatic", {"target": "color", "color": [255, 0, 0]})
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    prompt = type("P", (), {"source_image": red, "instruction": "x", "reference": None})
    results = reward(group_requests(prompt, None, [red, blue], "s"))
    assert results[0].score == pytest.approx(10.0) and results[1].score < 3.0
    white = Image.new("RGB", (4, 4), (255, 255, 255))
    assert ProgrammaticReward("brightness")(group_requests(prompt, None, [white], "b"))[0].score == pytest.approx(10.0)
    with pytest.raises(registry.RewardConfigError, match="reward kind 'nope' unknown"):
        registry.build_reward("nope", {})
    with pytest.raises(registry.RewardConfigError, match="unknown setting"):
        registry.build_reward("programmatic", {"shade": 3})


class _AsyncReward:
    name = "async"

    def __init__(self) -> None:
        self.pool, self.calls = ThreadPoolExecutor(2), []

    def __call__(self, requests):
        return [RewardResult(None if r.sample_id.endswith("/1") else float(len(r.sample_id)), error="timeout"
                             if r.sample_id.endswith("/1") else None) for r in requests]

    def submit(self, requests) -> Future:
        self.calls.append(len(requests))
        return self.pool.submit(self, requests)


def test_scorer_uses_submit_per_group_and_keeps_order() -> None:
    reward = _AsyncReward()
    scorer = GroupScorer(reward)
    image = Image.new("RGB", (4, 4))
    prompt = type("P", (), {"source_image": image, "instruction": "x", "reference": None})
    scorer.add(group_requests(prompt, None, [image] * 3, "a"))
    scorer.add(group_requests(prompt, None, [image] * 3, "bbb"))
    assert scorer.is_async and reward.calls == [3, 3]  # submitted as the groups arrived
    matrix = reward_matrix(scorer.collect())
    assert matrix[0, 0] == 3.0 and matrix[1, 2] == 5.0 and torch.isnan(matrix[:, 1]).all()


def test_scorer_batches_a_plain_reward_and_rejects_short_answers() -> None:
    calls = []

    def reward(requests):
        calls.append(len(requests))
        return [RewardResult(1.0)] * (len(requests) - 1)

    scorer = GroupScorer(reward)
    image = Image.new("RGB", (4, 4))
    prompt = type("P", (), {"source_image": image, "instruction": "x", "reference": None})
    scorer.add(group_requests(prompt, None, [image] * 2, "a"))
    scorer.add(group_requests(prompt, None, [image] * 2, "b"))
    with pytest.raises(RuntimeError, match="must answer every request"):
        scorer.collect()
    assert calls == [4]


def test_prompts_from_a_benchmark_folder_and_from_training_rows(tmp_path) -> None:
    write_benchmark(tmp_path / "bench", per_category=1, size=64)
    stream = ShardedPromptStream([str(tmp_path / "bench")], rank=0, world_size=2, seed=0, require_cot=True)
    first = stream.take(3)
    assert all(p.cot_text.startswith("<think>") and p.reference["source_scene"] for p in first)
    state = stream.state_dict()
    after = [p.id for p in stream.take(4)]
    stream.load_state_dict(state)
    assert [p.id for p in stream.take(4)] == after
    other = ShardedPromptStream([str(tmp_path / "bench")], rank=1, world_size=2, seed=0)
    assert not {p.id for p in first} & {p.id for p in other.take(3)}  # ranks read disjoint prompts

    row = json.loads((tmp_path / "bench" / "samples.jsonl").read_text().splitlines()[0])
    source = (tmp_path / "bench" / row["source_image"]).read_bytes()
    meta = json.dumps({"source_scene": row["reference"]["source_scene"],
                       "target_scene": row["reference"]["target_scene"]})
    training_row = {"id": "t", "kind": "edit_cot", "source_image": source, "instruction": row["instruction"],
                    "cot": json.dumps(row["reference"]["cot"]), "meta": meta}
    prompt = row_to_prompt(training_row, require_cot=True)
    assert prompt.reference["cot"] == row["reference"]["cot"] and prompt.cot_text.startswith("<think>")
    with pytest.raises(SampleError, match="not_an_edit"):
        row_to_prompt({**training_row, "kind": "understanding"})
    with pytest.raises(SampleError, match="missing_cot"):
        row_to_prompt({**training_row, "kind": "edit", "cot": None}, require_cot=True)
