"""Convert the Meta-CoT 21-Tasks-Bench CSVs (plus their images) to the common folder format.

    python scripts/bench_data/convert_21tasks.py --out data/bench/21tasks --csv-dir DIR [--image-root DIR]
    python scripts/bench_data/convert_21tasks.py --out data/bench/21tasks --repo HF_DATASET_ID

The official release (CSVs under the Meta-CoT repo's inference/benchmark/) was not public when this was written;
the HF dataset id is unverified. Columns are matched by common names; name them with --column ROLE=NAME
(roles: id, image, instruction, category, language) when they differ. Category names are mapped onto the fixed
list of inference/benchmark/tasks21_categories.py (other spellings too; --category-map NAME=OURS for the rest) and
checked before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inference.benchmark.converters.csv_tasks import convert_csv_tasks, csv_categories  # noqa: E402
from inference.benchmark.tasks21_categories import (CATEGORY_NAMES, CategoryMismatch,  # noqa: E402
                                                    category_renames, check_categories)
from inference.cli_args import HelpFormatter  # noqa: E402
from modeling.bagel.hub import HubDownloadError, download_repo  # noqa: E402


def pairs(items: list[str], flag: str) -> dict[str, str]:
    bad = [item for item in items if "=" not in item]
    if bad:
        raise ValueError(f"{flag} {bad[0]!r} must look like NAME=VALUE")
    return dict(item.split("=", 1) for item in items)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--out", required=True, help="benchmark folder to write")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv-dir", help="folder holding the release's CSV files")
    source.add_argument("--repo", help="HF dataset id to download (e.g. shiyi0408/Meta-CoT-21-Tasks-Bench)")
    p.add_argument("--image-root", default=None, help="folder image paths are relative to (default: CSV folder)")
    p.add_argument("--column", action="append", default=[], metavar="ROLE=NAME", help="CSV column of a role")
    p.add_argument("--category-map", action="append", default=[], metavar="NAME=OURS",
                   help=f"category name as released -> ours ({len(CATEGORY_NAMES)}: {', '.join(CATEGORY_NAMES)})")
    p.add_argument("--allow-extra-categories", action="store_true", help="keep categories outside the fixed list")
    args = p.parse_args(argv)
    try:
        columns, extra_map = pairs(args.column, "--column"), pairs(args.category_map, "--category-map")
        unknown_targets = sorted(set(extra_map.values()) - set(CATEGORY_NAMES))
        if unknown_targets:
            raise ValueError(f"--category-map targets {unknown_targets} are not in the fixed list {CATEGORY_NAMES}")
        folder = Path(args.csv_dir) if args.csv_dir else download_repo(args.repo, None, "dataset")
        files = sorted(folder.rglob("*.csv"))
        if not files:
            raise ValueError(f"no CSV file under {folder}")
        renames = category_renames(csv_categories(files, columns or None), extra_map)
        check_categories(set(renames.values()), allow_extra=args.allow_extra_categories)
    except (ValueError, CategoryMismatch, HubDownloadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stats = convert_csv_tasks(files, args.out, args.image_root, columns or None, renames)
    print(stats.summary("21tasks"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
