"""Convert the Meta-CoT 21-Tasks-Bench CSVs (plus their images) to the common folder format.

    python scripts/bench_data/convert_21tasks.py --out data/bench/21tasks --csv-dir DIR [--image-root DIR]
    python scripts/bench_data/convert_21tasks.py --out data/bench/21tasks --repo HF_DATASET_ID

The official release (CSVs under the Meta-CoT repo's inference/benchmark/) was not public when this was written;
the HF dataset id is unverified. Columns are matched by common names; name them with --column ROLE=NAME
(roles: id, image, instruction, category, language) when they differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inference.benchmark.converters.csv_tasks import convert_csv_tasks  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv-dir")
    source.add_argument("--repo", help="HF dataset id to download (e.g. shiyi0408/Meta-CoT-21-Tasks-Bench)")
    p.add_argument("--image-root", default=None, help="folder image paths are relative to (default: CSV folder)")
    p.add_argument("--column", action="append", default=[], metavar="ROLE=NAME")
    args = p.parse_args()
    folder = args.csv_dir
    if folder is None:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(args.repo, repo_type="dataset")
    files = sorted(Path(folder).rglob("*.csv"))
    if not files:
        raise SystemExit(f"no CSV file under {folder}")
    columns = dict(item.split("=", 1) for item in args.column)
    print(convert_csv_tasks(files, args.out, args.image_root, columns or None).summary("21tasks"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
