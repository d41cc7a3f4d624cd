"""SFT entry point: ``python -m train.sft.main CONFIG.yaml [section.key=value ...]`` (under torchrun for many GPUs).

Resumes automatically from the newest intact checkpoint in ``<output_dir>/checkpoints`` (damaged ones are moved
aside as ``step_XXXXXXXX.damaged-<n>``, see ``train/common/checkpoint.py``). A ``model.model_dir`` naming a missing
``ckpts/`` folder (ckpts/bagel) is downloaded first, by local rank 0; ``--prepare`` does only that and the config
check (the launchers run it once per node before torchrun).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch.distributed as dist

from data.mix_config import MixConfigError
from inference.cli_args import HelpFormatter
from data.skip_counters import NoUsableSampleError
from modeling.bagel.config import CheckpointError
from modeling.bagel.hub import HubDownloadError
from train.common.config import ConfigError, load_config
from train.common.distributed import barrier, init_distributed
from train.common.nan_guard import TrainingDiverged
from train.sft.base_checkpoint import ensure_base_checkpoint
from train.sft.build import build_sft_components
from train.sft.config import SFTConfig
from train.sft.loop import run_sft


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Meta-CoT SFT of BAGEL (FSDP2).", formatter_class=HelpFormatter)
    parser.add_argument("config", help="run config YAML, e.g. configs/sft/meta_cot.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-5 train.total_steps=100")
    parser.add_argument("--prepare", action="store_true",
                        help="check the config and fetch a missing ckpts/ base checkpoint, then exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(SFTConfig, args.config, args.overrides)
        if args.prepare:
            ensure_base_checkpoint(cfg)
            if cfg.model.model_dir is not None and not Path(cfg.model.model_dir).is_dir():
                raise ConfigError(f"model.model_dir {cfg.model.model_dir} does not exist; fix the path or use "
                                  "ckpts/bagel (downloaded on first use)")
            return 0
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    except HubDownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    info = init_distributed(cfg.train.device)
    try:
        if info.local_rank == 0:
            ensure_base_checkpoint(cfg)
        barrier()  # the other ranks read the checkpoint only once it is there
        run_sft(cfg, build_sft_components(cfg, info), info)
    except (TrainingDiverged, CheckpointError, MixConfigError, FileNotFoundError, HubDownloadError) as e:
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
