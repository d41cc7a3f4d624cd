"""Check the Flow-GRPO machinery on a checkpoint folder in the official layout.

    python scripts/check_grpo.py MODEL_DIR [--device cpu --dtype fp32]

From the folder's own config and tokenizer: a group of rollouts of one edit prompt with an SDE window, one GRPO
update with a programmatic reward. Prints one line per check, ``NAME value PASS|FAIL``, then ``ALL PASS`` or
``FAILED n``; exit status 0 only when all pass.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.inferencer import DTYPES, BagelInferencer  # noqa: E402
from modeling.bagel.config import CheckpointError  # noqa: E402
from train.rl.checks import CheckOptions, run_checks  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = CheckOptions()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model_dir", help="checkpoint folder (ema.safetensors, ae.safetensors, configs, tokenizer)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default=None, choices=sorted(DTYPES), help="default: bf16 on cuda, fp32 on cpu")
    p.add_argument("--group", type=int, default=d.group, help="rollouts in the group")
    p.add_argument("--image-size", type=int, default=d.image_size, help="edit size in pixels (multiple of 16)")
    p.add_argument("--num-timesteps", type=int, default=d.num_timesteps, help="schedule points (steps + 1)")
    p.add_argument("--window", type=int, default=d.window, help="SDE steps, from the first step")
    p.add_argument("--noise-level", type=float, default=d.noise_level)
    p.add_argument("--no-cfg", action="store_true", help="policy without guidance (cond branch only)")
    p.add_argument("--trainable", default=d.trainable, choices=["lora", "full"])
    p.add_argument("--lora-rank", type=int, default=d.lora_rank)
    p.add_argument("--seed", type=int, default=d.seed)
    args = p.parse_args(argv)
    if args.group < 2 or args.image_size % 16 or args.window < 1 or args.num_timesteps < args.window + 3:
        p.error("need --group >= 2, --image-size a multiple of 16, --window >= 1, --num-timesteps >= window + 3")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dtype = args.dtype or ("bf16" if args.device == "cuda" else "fp32")
    if args.trainable == "full":
        from train.common.distributed import init_distributed
        init_distributed(args.device)
    try:
        inferencer = BagelInferencer.from_pretrained(args.model_dir, args.device, dtype)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    options = CheckOptions(group=args.group, image_size=args.image_size, num_timesteps=args.num_timesteps,
                           window=args.window, noise_level=args.noise_level, cfg=not args.no_cfg,
                           trainable=args.trainable, lora_rank=args.lora_rank, seed=args.seed)
    checks = run_checks(inferencer, options)
    for check in checks:
        print(check.line())
    failed = sum(not c.passed for c in checks)
    print("ALL PASS" if failed == 0 else f"FAILED {failed}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
