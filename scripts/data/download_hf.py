"""Download a public dataset from the Hugging Face Hub (a registry entry, or any dataset repository).

    python scripts/data/download_hf.py --dataset NAME                    # entry of data/dataset_info.py with hf_repo
    python scripts/data/download_hf.py --repo-id ORG/NAME --out DIR [--allow-pattern 'data/*.parquet' ...]

Re-running resumes and skips files already complete. Set HF_TOKEN for gated datasets.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.hub_download import download_dataset, registered_target  # noqa: E402
from inference.cli_args import HelpFormatter  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--dataset", help="registry name (data/dataset_info.py)")
    target.add_argument("--repo-id", help="Hugging Face dataset repository, e.g. org/name")
    p.add_argument("--out", help="destination folder (with --repo-id)")
    p.add_argument("--allow-pattern", action="append", default=[], help="only files matching (repeatable)")
    p.add_argument("--revision")
    args = p.parse_args()
    try:
        if args.dataset:
            repo, out, patterns = registered_target(args.dataset)
        else:
            if not args.out:
                p.error("--out is required with --repo-id")
            repo, out, patterns = args.repo_id, args.out, []
        folder = download_dataset(repo, out, args.allow_pattern or patterns, args.revision)
    except (KeyError, ValueError) as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    print(f"downloaded {repo} -> {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
