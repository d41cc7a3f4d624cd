"""The Flow-GRPO trainer on CPU with the tiny checkpoint: it raises a programmatic reward, resumes exactly, keeps the
first ratio at 1 and the KL at 0 against its reference, and exports merged LoRA weights that load and run."""

from __future__ import annotations

import json

import pytest
import torch

from data.shapes_edit.export import write_benchmark
from inference.inferencer import BagelInferencer
from modeling.bagel.loader import load_bagel
from train.common.config import load_config
from train.common.distributed import init_distributed
from train.rl.build import build_rl_components
from train.common.nan_guard import TrainingDiverged
from train.rl.config import RLConfig
from train.rl.loop import run_grpo
from train.rl.main import main
from train.rl.rollout import build_contexts
from train.rl.policy import GroupPolicy
from tests.fixture_paths import TINY

CONFIG = "configs/rl/tiny_cpu.yaml"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    path = tmp_path_factory.mktemp("rl") / "bench"
    write_benchmark(path, per_category=1, size=64)
    return path


@pytest.fixture
def dist_info():
    torch.set_num_threads(1)
    return init_distributed("cpu")  # per test: the entry-point test's main() ends its process group


def _config(bench, out, *overrides: str) -> RLConfig:
    return load_config(RLConfig, CONFIG, [f"model.model_dir={TINY}", f"data.paths=[{bench}]", f"output_dir={out}",
                                          "logging.image_every=0", *overrides])


class Killed(Exception):
    pass


def test_tiny_run_raises_the_programmatic_reward(bench, tmp_path, dist_info) -> None:
    cfg = _config(bench, tmp_path, "train.total_steps=12", "checkpoint.every=100", "logging.image_every=6")
    summary = run_grpo(cfg, build_rl_components(cfg, dist_info), dist_info)
    rewards = [summary.metrics[s]["reward/mean"] for s in range(1, 13)]
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    spread = max(summary.metrics[s]["reward/std"] for s in range(1, 4))
    assert last > first + spread, rewards  # the mean moved by more than a whole group's spread at the start
    assert all(summary.metrics[s]["ratio/on_policy_max_dev"] == 0.0 for s in summary.metrics)
    rows = [json.loads(line) for line in open(tmp_path / "logs" / "metrics.jsonl")]
    assert len(rows) == 12 and {"reward/brightness/mean", "adv/std", "clip_fraction", "kl", "steps_per_s",
                                "groups/zero_variance_fraction", "ratio/max", "grad_norm"} <= set(rows[-1])
    assert (tmp_path / "rollouts" / "step_00000012.png").is_file()
    assert (tmp_path / "export" / "final" / "ema.safetensors").is_file()


def test_kill_and_resume_equals_uninterrupted(bench, tmp_path, dist_info) -> None:
    overrides = ["train.total_steps=4", "checkpoint.every=2", "rollout.group_size=4", "rollout.prompts_per_rank=1",
                 "train.ema_decay=0.5"]
    full_cfg = _config(bench, tmp_path / "full", *overrides)
    full_parts = build_rl_components(full_cfg, dist_info)
    full = run_grpo(full_cfg, full_parts, dist_info)

    cut_cfg = _config(bench, tmp_path / "cut", *overrides)

    def kill_at_3(step: int, _scalars) -> None:
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        run_grpo(cut_cfg, build_rl_components(cut_cfg, dist_info), dist_info, on_step=kill_at_3)
    resumed_parts = build_rl_components(cut_cfg, dist_info)
    resumed = run_grpo(cut_cfg, resumed_parts, dist_info)
    assert resumed.start_step == 2
    for step in (3, 4):
        for key in ("reward/mean", "loss", "grad_norm"):
            assert resumed.metrics[step][key] == full.metrics[step][key], (step, key)
    exported = [load_bagel(tmp_path / run / "export" / "final").model.state_dict() for run in ("full", "cut")]
    for name, value in exported[0].items():
        assert torch.equal(value, exported[1][name]), name


def test_damaged_newest_checkpoint_is_moved_aside_and_the_run_resumes_from_the_previous(bench, tmp_path,
                                                                                         dist_info) -> None:
    cfg = _config(bench, tmp_path, "train.total_steps=4", "checkpoint.every=2", "rollout.group_size=4",
                  "rollout.prompts_per_rank=1")
    first = run_grpo(cfg, build_rl_components(cfg, dist_info), dist_info)
    newest = tmp_path / "checkpoints" / "step_00000004"
    shard = next(newest.glob("*.distcp"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern in the middle of the weights
    shard.write_bytes(bytes(data))
    again = run_grpo(cfg, build_rl_components(cfg, dist_info), dist_info)
    assert again.start_step == 2  # step 4 was damaged: the run went back to step 2 and redid 3 and 4
    assert (tmp_path / "checkpoints" / "step_00000004.damaged-1" / shard.name).read_bytes() == bytes(data)
    for step in (3, 4):
        assert again.metrics[step]["reward/mean"] == first.metrics[step]["reward/mean"]


def test_lora_run_starts_on_policy_at_the_reference_and_exports_merged_weights(bench, tmp_path, dist_info) -> None:
    cfg = _config(bench, tmp_path, "trainable.mode=lora", "trainable.lora_rank=4", "trainable.include_latent_io=false",
                  "grpo.kl_beta=0.1", "train.total_steps=3", "train.updates_per_step=2", "rollout.group_size=4",
                  "checkpoint.export_dtype=float32", "checkpoint.every=100")
    parts = build_rl_components(cfg, dist_info)
    summary = run_grpo(cfg, parts, dist_info)
    first = summary.metrics[1]
    assert first["kl/on_policy_max"] == 0.0 and first["ratio/on_policy_max_dev"] == 0.0
    assert first["optimizer_steps"] == 2.0 and first["ratio/min"] < 1.0  # the second update is off-policy
    assert first["kl"] > 0.0 and summary.metrics[3]["kl/on_policy_max"] > 0.0

    # the merged export computes what the trained adapters compute
    exported = BagelInferencer(load_bagel(tmp_path / "export" / "final"))
    settings = cfg.rollout.settings()
    prompt = parts.prompts.take(1)[0]
    x = torch.randn(4, 4, 64, generator=torch.Generator().manual_seed(0))
    velocities = []
    for inferencer in (parts.inferencer, exported):
        with torch.no_grad():
            contexts = build_contexts(inferencer, prompt, settings, 0, prompt.cot_text)
            policy = GroupPolicy(inferencer.model, contexts, (2, 2), 4, settings.policy, settings.timesteps("cpu"))
            velocities.append(policy.velocity(x, torch.tensor(0.7)))
    torch.testing.assert_close(velocities[0], velocities[1], rtol=0, atol=1e-5)
    assert (velocities[0] - BagelInferencer(load_bagel(TINY)).model.group_velocity(
        policy.plan, x, torch.tensor(0.7))[0]).abs().max() > 0  # and it differs from the starting weights


def test_entry_point_errors(bench, tmp_path, capsys) -> None:
    common = [CONFIG, f"model.model_dir={TINY}", f"data.paths=[{bench}]", f"output_dir={tmp_path}"]
    assert main([*common, "rollout.window.size=0"]) == 2
    assert "window.size" in capsys.readouterr().err
    assert main([*common, "reward.kind=nope"]) == 1
    assert "reward kind 'nope' unknown" in capsys.readouterr().err
    assert main([*common, "reward.server.mode=external", "reward.kind=programmatic"]) == 2
    assert "reward server mode external needs url" in capsys.readouterr().err
    assert main([*common, "reward.server.mode=external", "reward.server.url=http://127.0.0.1:9/v1"]) == 1
    assert "reward server check failed" in capsys.readouterr().err


def test_non_finite_loss_skips_the_update_and_stops_after_too_many(bench, tmp_path, dist_info, monkeypatch) -> None:
    import train.rl.update as update

    real = update.ppo_clip_loss

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        out.per_sample = out.per_sample * float("nan")
        return out

    monkeypatch.setattr(update, "ppo_clip_loss", poisoned)
    cfg = _config(bench, tmp_path, "train.total_steps=3", "train.max_consecutive_bad_steps=2", "rollout.group_size=4",
                  "rollout.prompts_per_rank=1", "checkpoint.every=100")
    parts = build_rl_components(cfg, dist_info)
    start = {k: v.clone() for k, v in parts.inferencer.model.state_dict().items()}
    with pytest.raises(TrainingDiverged, match="2 consecutive steps"):
        run_grpo(cfg, parts, dist_info)
    assert (tmp_path / "checkpoints" / "step_00000002" / "COMPLETE").is_file()  # saved before stopping
    model = parts.inferencer.model.state_dict()
    for name, value in start.items():
        if "moe_gen" in name:  # trained set: untouched, both updates were skipped
            assert torch.equal(model[name].full_tensor() if hasattr(model[name], "full_tensor") else model[name],
                               value.full_tensor() if hasattr(value, "full_tensor") else value), name
