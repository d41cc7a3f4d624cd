"""The Flow-GRPO scripts on CPU: check_grpo on the tiny folder, bench_rl at a tiny shape, the launchers' help and
errors, and that every RL config loads."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from scripts.bench_rl import main as bench_main
from scripts.check_grpo import main as check_main
from train.common.config import load_config
from train.rl.config import RLConfig
from tests.fixture_paths import TINY
from tests.shrunk_configs import write_shrunk_configs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_check_grpo_passes_on_the_tiny_folder(capsys) -> None:
    code = check_main([str(TINY), "--device", "cpu", "--dtype", "fp32", "--image-size", "32", "--num-timesteps", "5"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and lines[-1] == "ALL PASS", lines
    values = {line.split()[0]: float(line.split()[1]) for line in lines[:-1]}
    assert values["ratio_max_abs_dev"] <= 1e-5 and values["frozen_grad_norm"] == 0.0
    assert values["trainable_grad_norm"] > 0 and values["noise0_equals_euler"] == 0.0
    assert {"logprob_closed_form_max_err", "group_advantage_mean"} <= set(values)


def test_check_grpo_reports_a_bad_folder(tmp_path, capsys) -> None:
    assert check_main([str(tmp_path), "--device", "cpu"]) == 2
    assert "tokenizer" in capsys.readouterr().err


def test_bench_rl_reports_both_modes_at_a_tiny_shape(tmp_path) -> None:
    small = write_shrunk_configs(tmp_path)
    out = tmp_path / "figures.json"
    figures = bench_main(["--config", str(small), "--device", "cpu", "--dtype", "fp32", "--size", "32", "--group", "2",
                          "--num-timesteps", "4", "--window", "1", "--cot-chars", "30", "--lora-rank", "4",
                          "--repeats", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == figures
    for mode in ("lora", "full"):
        f = figures[mode]
        assert f["rollout_batched_s_per_group"] > 0 and f["update_s_per_step"] > 0 and f["trainable_params"] > 0
        assert f["rollout_speedup"] == pytest.approx(
            f["rollout_one_at_a_time_s_per_group"] / f["rollout_batched_s_per_group"], rel=0.01)
        assert f["rollout_per_edit_s_per_group"] > 0 and f["rollout_speedup_vs_per_edit"] > 0
        assert f["sde_window_steps"] == [0]


@pytest.mark.parametrize("script", ["train_rl_cec.sh", "train_rl_cec_single_node.sh"])
def test_launchers_help_and_missing_config(script, tmp_path) -> None:
    path = ROOT / "scripts" / script
    shown = subprocess.run(["bash", str(path), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "configs/rl/cec.yaml" in shown.stdout
    missing = subprocess.run(["bash", str(path), "nope.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 2 and "nope.yaml not found" in missing.stderr


@pytest.mark.parametrize("name", ["cec.yaml", "shapes_edit.yaml", "tiny_cpu.yaml"])
def test_rl_configs_load(name) -> None:
    cfg = load_config(RLConfig, str(ROOT / "configs" / "rl" / name))
    assert cfg.rollout.settings().window.size >= 1
