"""Flow-GRPO on 2 processes (gloo, FSDP2 over the generation expert) equals 1 process that rolls out the same
groups: rewards are gathered, the loss is the global mean, gradients are reduced."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from data.shapes_edit.export import write_benchmark
from train.common.config import load_config
from train.common.distributed import init_distributed
from train.rl.build import build_rl_components
from train.rl.config import RLConfig
from train.rl.loop import run_grpo
from train.rl.prompts import ShardedPromptStream
from tests.fixture_paths import TINY

STEPS, PER_RANK = 2, 1


class BlockPrompts:
    """Iteration k hands out prompts [k * world * per_rank, ...): rank r its slice r, one process all of them."""

    def __init__(self, prompts: list, rank: int, world: int) -> None:
        self.prompts, self.rank, self.world, self.block = prompts, rank, world, 0

    def take(self, n: int) -> list:
        start = self.block * self.world * n + self.rank * n
        self.block += 1
        return [self.prompts[(start + i) % len(self.prompts)] for i in range(n)]

    def state_dict(self) -> dict:
        return {"block": self.block}

    def load_state_dict(self, state: dict) -> None:
        self.block = state["block"]


def _config(bench: str, out: str, per_rank: int) -> RLConfig:
    return load_config(RLConfig, "configs/rl/tiny_cpu.yaml", [
        f"model.model_dir={TINY}", f"data.paths=[{bench}]", f"output_dir={out}", f"train.total_steps={STEPS}",
        f"rollout.prompts_per_rank={per_rank}", "rollout.group_size=4", "checkpoint.every=100",
        "checkpoint.export_dtype=float32", "logging.image_every=0", "grpo.global_std=true"])


def _run(bench: str, out: str, rank: int, world: int):
    info = init_distributed("cpu")
    cfg = _config(bench, out, PER_RANK * 2 // world)
    parts = build_rl_components(cfg, info)
    parts.prompts = BlockPrompts(ShardedPromptStream([bench], 0, 1, seed=0).take(8), rank, world)
    return run_grpo(cfg, parts, info)


def _worker(rank: int, port: int, bench: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    summary = _run(bench, out, rank, 2)
    if rank == 0:
        torch.save(summary.metrics, os.path.join(out, "metrics.pt"))
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_two_processes_equal_one(tmp_path) -> None:
    bench = str(tmp_path / "bench")
    write_benchmark(bench, per_category=1, size=64)
    two = str(tmp_path / "two")
    mp.spawn(_worker, args=(_free_port(), bench, two), nprocs=2, join=True)
    two_metrics = torch.load(os.path.join(two, "metrics.pt"))

    torch.set_num_threads(1)
    one = _run(bench, str(tmp_path / "one"), 0, 1)
    for step in range(1, STEPS + 1):
        for key in ("reward/mean", "reward/std", "adv/std", "loss", "grad_norm", "ratio/on_policy_max_dev"):
            assert one.metrics[step][key] == pytest.approx(two_metrics[step][key], rel=1e-4, abs=1e-7), (step, key)
    weights = [load_file(os.path.join(run, "export", "final", "ema.safetensors")) for run in (two, tmp_path / "one")]
    start = load_file(str(TINY / "ema.safetensors"))
    moved = max(float((weights[1][k] - start[k]).abs().max()) for k in weights[1])
    assert moved > 1e-4
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-6, msg=name)
