"""Flow-GRPO entry point: ``python -m train.rl.main CONFIG.yaml [section.key=value ...]`` (under torchrun for many
GPUs; see scripts/train_rl_cec.sh). Resumes from the newest intact checkpoint in ``<output_dir>/checkpoints`` (damaged ones are moved aside).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch.distributed as dist

from modeling.bagel.config import CheckpointError
from train.common.checkpoint import broadcast_object
from train.common.config import ConfigError, load_config
from train.common.distributed import init_distributed
from train.common.nan_guard import TrainingDiverged
from train.rl.build import build_rl_components
from train.rl.config import RLConfig
from train.rl.loop import run_grpo
from train.rl.rewards.registry import RewardConfigError
from train.rl.rewards.server import RewardServerError, ensure_reward_server


def connect_reward_server(cfg: RLConfig, is_main: bool) -> None:
    """Rank 0 starts or checks the judge server (``reward.server``, train/rl/rewards/server.py); every rank then
    points its VLM-judged rewards (kind cec, also inside a mix) at that URL and served model, unless their settings
    name a base_url of their own."""
    server = cfg.reward.server
    if server.mode == "none":
        return
    log_path = os.path.join(cfg.output_dir, "logs", "reward_server.log")
    url = broadcast_object(ensure_reward_server(server, log_path) if is_main else None)
    rewards = ([(cfg.reward.kind, cfg.reward.settings)] if cfg.reward.kind != "mix" else
               [(c.get("kind"), c.setdefault("settings", {})) for c in cfg.reward.settings.get("components", [])])
    for kind, settings in rewards:
        if kind == "cec":
            settings.setdefault("base_url", url)
            if server.mode == "vllm":
                settings.setdefault("model", server.model)  # the name the started server serves


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Flow-GRPO (Meta-CoT stage 2) of BAGEL's generation expert.")
    parser.add_argument("config", help="run config YAML, e.g. configs/rl/cec.yaml or configs/rl/tiny_cpu.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-5 train.total_steps=10")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(RLConfig, args.config, args.overrides)
    except (ConfigError, ValueError) as e:  # ValueError: a settings object refused its values
        print(f"config error: {e}", file=sys.stderr)
        return 2
    info = init_distributed(cfg.train.device)
    try:
        connect_reward_server(cfg, info.is_main)
        run_grpo(cfg, build_rl_components(cfg, info), info)
    except (TrainingDiverged, CheckpointError, RewardConfigError, RewardServerError, FileNotFoundError) as e:
        print(f"[rank {info.rank}] {e}", file=sys.stderr)
        return 1
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
