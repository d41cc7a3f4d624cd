"""Training-step benchmark on the SFT issue's fixed workload, with random weights.

Workload: BAGEL-7B-MoT widths (LLM hidden 3584, MLP 18944, 28 heads, 4 KV heads, qk-norm) cut to 4 decoder layers,
the full 26-layer SigLIP (width 1152); one packed batch of 8 edit samples, each 512 text tokens (instruction + CoT,
CE on the CoT half) + a 504x504 source as ViT patches (36x36) + the 512x512 source as clean latents (32x32) + the
512x512 target as noised latents (32x32) with MSE: 30,896 tokens. VAE latents are precomputed; the VAE encode of
the 16 images is timed separately. Each step: forward + backward + clip + AdamW (+ EMA in the trainer mode).

MFU = FLOPs / (s/step * dense bf16 peak); FLOPs = 3 x forward matmul FLOPs of the active expert per token, the ViT,
attention over the pairs each token really attends and the lm_head on CE tokens (formula: train/common/flops.py):
    3 * [L*(T*2*(2H^2 + 2H*Hkv + 3H*I) + P*4H) + Lv*(Tv*2*(4Hv^2 + 2Hv*Iv) + Pv*4Hv) + C*2H*V]

    python scripts/bench_train.py --mode original            # bf16 weights + AdamW states, like the original
    python scripts/bench_train.py --mode trainer --ac        # fp32 master weights, FSDP2, bf16 compute, checkpointing
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.packing import SpecialTokens  # noqa: E402
from inference.cli_args import HelpFormatter  # noqa: E402
from modeling.bagel.config import config_from_reference_json  # noqa: E402
from train.common.distributed import init_distributed  # noqa: E402
from train.sft.benchmark import run_benchmark, time_vae_encode  # noqa: E402
from train.sft.synthetic_data import SyntheticEditConfig, synthetic_edit_batch  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model" / "bagel-7b-mot.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--mode", choices=("original", "trainer"), required=True)
    p.add_argument("--ac", action="store_true", help="activation checkpointing per block (trainer mode)")
    p.add_argument("--compile", action="store_true", help="torch.compile each decoder layer and ViT block")
    p.add_argument("--adamw", default="auto", choices=("auto", "fused", "foreach"))
    p.add_argument("--attn-backend", default="auto", choices=("auto", "flash", "flex", "sdpa"))
    p.add_argument("--llm-layers", type=int, default=4)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--configs", default=str(CONFIGS), help="full-size configs JSON (widths)")
    p.add_argument("--json", help="also write the result as JSON here")
    p.add_argument("--profile", help="profile one extra step; write its kernel table here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = init_distributed("auto")
    config = config_from_reference_json(args.configs)
    config.llm.num_hidden_layers = args.llm_layers
    special = SpecialTokens(151644, 151645, 151652, 151653)
    workload = SyntheticEditConfig(samples_per_batch=args.samples)
    batch = synthetic_edit_batch(workload, special, 0)
    result = run_benchmark(config, batch, args.mode, info.device, steps=args.steps, warmup=args.warmup,
                           attn_backend=args.attn_backend, activation_checkpointing=args.ac, compile_blocks=args.compile,
                           adamw=args.adamw, profile_path=args.profile)
    vae_s = time_vae_encode(config, 2 * args.samples, workload.vae_side, info.device)
    report = {**asdict(result), "activation_checkpointing": args.ac, "compile": args.compile, "adamw": args.adamw,
              "attn_backend": args.attn_backend,
              "vae_encode_s_per_step": vae_s, "device": torch.cuda.get_device_name() if info.device.type == "cuda"
              else "cpu", "torch": torch.__version__}
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
