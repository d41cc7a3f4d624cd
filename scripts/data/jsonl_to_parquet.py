"""Convert JSONL records (columns of data/sample_schema.py, image paths relative to the JSONL) into parquet shards.

    python scripts/data/jsonl_to_parquet.py records.jsonl [more.jsonl ...] --out datasets/metacot/edit_cot \
        [--image-root DIR] [--rows-per-shard 1024] [--row-group-size 64]

Unreadable lines and missing image files are skipped and counted; shards are written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.parquet_writer import jsonl_to_parquet  # noqa: E402
from inference.cli_args import HelpFormatter  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("jsonl", nargs="+", help="JSONL files, folders or globs")
    p.add_argument("--out", required=True, help="output folder for shard-NNNNN.parquet")
    p.add_argument("--image-root", help="base folder of relative image paths (default: each JSONL's folder)")
    p.add_argument("--rows-per-shard", type=int, default=1024)
    p.add_argument("--row-group-size", type=int, default=64, help="rows per row group (the unit a loader reads)")
    args = p.parse_args()
    try:
        paths, skipped = jsonl_to_parquet(args.jsonl, args.out, args.image_root, args.rows_per_shard,
                                          args.row_group_size)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} shard(s) to {args.out}; skipped: {skipped or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
