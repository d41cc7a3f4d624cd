"""Flow-GRPO entry point: ``python -m train.rl.main CONFIG.yaml [section.key=value ...]`` (under torchrun for many
GPUs; see scripts/train_rl_cec.sh). Resumes from the newest complete checkpoint in ``<output_dir>/checkpoints``.
"""

from __future__ import annotations

import argparse
import sys

import torch.distributed as dist

from modeling.bagel.config import CheckpointError
from train.common.config import ConfigError, load_config
from train.common.distributed import barrier, init_distributed
from train.common.nan_guard import TrainingDiverged
from train.rl.build import build_rl_components
from train.rl.config import RLConfig, RewardServerConfig
from train.rl.loop import run_grpo
from train.rl.rewards.registry import RewardConfigError


def start_reward_server(server: RewardServerConfig) -> object:
    """Rank 0 starts or checks the judge server (train/rl/rewards/server.py) before training; others wait."""
    if server.mode == "none":
        return None
    try:
        from train.rl.rewards.server import ensure_reward_server
    except ModuleNotFoundError as e:
        if e.name != "train.rl.rewards.server":
            raise
        raise RewardConfigError("reward server support is not installed (train/rl/rewards/server.py); set "
                                "reward.server.mode=none") from e
    return ensure_reward_server(server)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Flow-GRPO (Meta-CoT stage 2) of BAGEL's generation expert.")
    parser.add_argument("config", help="run config YAML, e.g. configs/rl/cec.yaml or configs/rl/tiny_cpu.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-5 train.total_steps=10")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(RLConfig, args.config, args.overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    info = init_distributed(cfg.train.device)
    server = None
    try:
        if info.is_main:
            server = start_reward_server(cfg.reward.server)
        barrier()
        run_grpo(cfg, build_rl_components(cfg, info), info)
    except (TrainingDiverged, CheckpointError, RewardConfigError, FileNotFoundError) as e:
        print(f"[rank {info.rank}] {e}", file=sys.stderr)
        return 1
    finally:
        close = getattr(server, "close", None)
        if callable(close):
            close()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
