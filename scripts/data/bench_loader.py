"""Loader benchmark: packed tokens/s and samples/s of one rank with 1, 2 and 4 workers on 512-1024 px edit samples.

    python scripts/data/bench_loader.py [--samples 96] [--batches 12] [--workers 0 1 2 4] [--tokenizer MODEL_DIR]

Writes synthetic JPEG edit pairs (sides drawn in 512..1024) as parquet shards to --data-dir (reused when present)
and streams them through the edit-only mix settings (VAE [1024, 512, 16], ViT [518, 224, 14], 10240-token batches).
Workers 0 loads in the main process and also reports tokens per CPU-second: the rate one worker reaches on a free
core, so the figure that predicts N-worker throughput on a machine with N idle cores.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.dataset_info import DatasetInfo, register_dataset  # noqa: E402
from data.demo_records import BYTE_SPECIAL_TOKENS, ByteTokenizer, demo_records  # noqa: E402
from data.loader_bench import measure_loader  # noqa: E402
from data.mix_config import parse_mix  # noqa: E402
from data.packed_dataset import PackedMixDataset  # noqa: E402
from data.parquet_writer import write_parquet_shards  # noqa: E402
from data.tokenizer_ids import load_tokenizer  # noqa: E402
from inference.cli_args import HelpFormatter  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--data-dir", default="/tmp/metacot_bench_edit")
    p.add_argument("--samples", type=int, default=96)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
    p.add_argument("--tokenizer", help="tokenizer folder (default: a byte tokenizer; text is a tiny share of the cost)")
    args = p.parse_args()
    if not any(Path(args.data_dir).glob("*.parquet")):
        rows = demo_records(args.samples, kinds=("edit",), size_range=(512, 1024), seed=0, image_format="JPEG")
        write_parquet_shards(rows, args.data_dir, rows_per_shard=32, row_group_size=8)
    register_dataset(DatasetInfo("bench_edit", "parquet", (args.data_dir,)), overwrite=True)
    budget = {"expected_num_tokens": 10240, "max_num_tokens": 11520, "max_num_tokens_per_sample": 10240}
    mix = parse_mix({"tokens": budget,
                     "groups": {"edit": {"datasets": ["bench_edit"], "weight": 1.0,
                                         "vae_transform": [1024, 512, 16], "vit_transform": [518, 224, 14]}}})
    tokenizer, special = load_tokenizer(args.tokenizer) if args.tokenizer else (ByteTokenizer(), BYTE_SPECIAL_TOKENS)
    torch.set_num_threads(1)  # as in a DataLoader worker, so the in-process run measures one worker's cost
    print(f"cpu cores visible: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; "
          f"batches per run: {args.batches}")
    print(f"{'workers':>8}{'tokens/s':>12}{'samples/s':>11}{'batches':>9}{'tokens/batch':>14}{'tokens/cpu-s':>14}")
    for workers in args.workers:
        dataset = PackedMixDataset(mix, tokenizer, special, num_workers=workers)
        r = measure_loader(dataset, args.batches, warmup_batches=max(1, workers))
        per_cpu = "-" if r.tokens_per_cpu_s is None else f"{r.tokens_per_cpu_s:.0f}"
        print(f"{workers:>8}{r.tokens_per_s:>12.0f}{r.samples_per_s:>11.2f}{r.batches:>9}{r.tokens / r.batches:>14.0f}"
              f"{per_cpu:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
