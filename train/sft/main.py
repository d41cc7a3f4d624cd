"""SFT entry point: ``python -m train.sft.main CONFIG.yaml [section.key=value ...]`` (under torchrun for many GPUs).

Resumes automatically from the newest intact checkpoint in ``<output_dir>/checkpoints`` (damaged ones are moved
aside as ``step_XXXXXXXX.damaged-<n>``, see ``train/common/checkpoint.py``).
"""

from __future__ import annotations

import argparse
import sys

import torch.distributed as dist

from data.mix_config import MixConfigError
from data.skip_counters import NoUsableSampleError
from modeling.bagel.config import CheckpointError
from train.common.config import ConfigError, load_config
from train.common.distributed import init_distributed
from train.common.nan_guard import TrainingDiverged
from train.sft.build import build_sft_components
from train.sft.config import SFTConfig
from train.sft.loop import run_sft


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Meta-CoT SFT of BAGEL (FSDP2).")
    parser.add_argument("config", help="run config YAML, e.g. configs/sft/meta_cot.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-5 train.total_steps=100")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(SFTConfig, args.config, args.overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    info = init_distributed(cfg.train.device)
    try:
        run_sft(cfg, build_sft_components(cfg, info), info)
    except (TrainingDiverged, CheckpointError, MixConfigError, FileNotFoundError) as e:
        print(f"[rank {info.rank}] {e}", file=sys.stderr)
        return 1
    except NoUsableSampleError as e:  # raised in a loader worker, re-raised here with its traceback in the message
        print(f"[rank {info.rank}] data error: {e.line}", file=sys.stderr)
        return 1
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
