"""Download GEdit-Bench (HF dataset stepfun-ai/GEdit-Bench) and convert it to OUT_ROOT/gedit_en and gedit_cn.

    python scripts/bench_data/convert_gedit.py --out-root data/bench [--parquet-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inference.benchmark.converters.gedit import convert_gedit  # noqa: E402
from inference.cli_args import HelpFormatter  # noqa: E402
from modeling.bagel.hub import HubDownloadError, download_repo  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--out-root", required=True, help="writes OUT_ROOT/gedit_en and OUT_ROOT/gedit_cn")
    p.add_argument("--repo", default="stepfun-ai/GEdit-Bench", help="HF dataset id")
    p.add_argument("--parquet-dir", default=None, help="already downloaded parquet files (skips the download)")
    args = p.parse_args()
    folder = args.parquet_dir
    try:
        folder = folder or download_repo(args.repo, None, "dataset", ("*.parquet",))
    except HubDownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    files = sorted(Path(folder).rglob("*.parquet"))
    if not files:
        print(f"error: no parquet file under {folder}", file=sys.stderr)
        return 2
    for lang, stats in convert_gedit(files, args.out_root).items():
        print(stats.summary(f"gedit_{lang}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
