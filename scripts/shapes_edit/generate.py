"""Generate ShapesEdit training shards and a benchmark folder.

    python -m scripts.shapes_edit.generate --out datasets/shapes_edit --num-samples 10000 --workers 2 \
        --bench-dir datasets/shapes_edit_bench --bench-per-category 20 [--reflection-samples 10000]
"""

from __future__ import annotations

import argparse
import json
import time

from data.shapes_edit.export import CATEGORY_NAMES, generate_dataset, write_benchmark
from data.shapes_edit.reflection_samples import generate_reflection_dataset
from data.shapes_edit.recover import EXACT_MIN_PX
from data.shapes_edit.render import MAX_SIZE_PX, MIN_SIZE_PX
from inference.cli_args import HelpFormatter


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    p.add_argument("--out", required=True, help="folder for <kind>/part-NNNNN.parquet and manifest.json")
    p.add_argument("--num-samples", type=int, default=10000, help="edit samples (each gives 3 rows)")
    p.add_argument("--size", type=int, default=256, help=f"image side in pixels, {MIN_SIZE_PX}..{MAX_SIZE_PX}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-size", type=int, default=1000, help="samples per parquet file")
    p.add_argument("--workers", type=int, default=2, help="processes")
    p.add_argument("--categories", default=",".join(CATEGORY_NAMES),
                   help="comma list of the categories of the training samples (the benchmark has all of them)")
    p.add_argument("--drop-task-thinking", action="store_true", help="Meta-CoTs without Step 2 (ablation)")
    p.add_argument("--bench-dir", default=None, help="also write a benchmark folder here")
    p.add_argument("--bench-per-category", type=int, default=20)
    p.add_argument("--reflection-samples", type=int, default=0,
                   help="also write this many reflection rows to OUT/reflection (0: none)")
    args = p.parse_args(argv)
    unknown = [c for c in args.categories.split(",") if c not in CATEGORY_NAMES]
    if unknown:
        p.error(f"unknown categories {unknown}; choose among {', '.join(CATEGORY_NAMES)}")
    if not MIN_SIZE_PX <= args.size <= MAX_SIZE_PX:
        p.error(f"--size {args.size} is outside {MIN_SIZE_PX}..{MAX_SIZE_PX}")
    if args.reflection_samples > 0 and args.size < EXACT_MIN_PX:
        p.error(f"--reflection-samples needs --size >= {EXACT_MIN_PX}: the exact judge that labels them reads "
                "smaller images inexactly")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    manifest = generate_dataset(args.out, args.num_samples, seed=args.seed, size=args.size,
                                shard_size=args.shard_size, workers=args.workers,
                                categories=tuple(args.categories.split(",")), drop_task_thinking=args.drop_task_thinking)
    print(json.dumps(manifest))
    if args.reflection_samples > 0:
        print(json.dumps(generate_reflection_dataset(args.out, args.reflection_samples, seed=args.seed, size=args.size,
                                                     shard_size=args.shard_size, workers=args.workers)))
    if args.bench_dir:
        began = time.perf_counter()
        n = write_benchmark(args.bench_dir, args.bench_per_category, seed=args.seed, size=args.size)
        print(f"benchmark: {n} samples in {args.bench_dir} ({time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
