"""Download the checkpoints from the Hugging Face Hub into ckpts/ (resumable; re-running skips finished files).

    python scripts/download_ckpt.py                       # BAGEL-7B-MoT -> ckpts/bagel, Meta-CoT -> ckpts/metacot
    python scripts/download_ckpt.py --only bagel          # one of them
    python scripts/download_ckpt.py TARGET_DIR [REPO_ID]  # one folder: BAGEL-7B-MoT (or REPO_ID) into TARGET_DIR

Repository ids: $BAGEL_REPO (default ByteDance-Seed/BAGEL-7B-MoT), $METACOT_REPO (default shiyi0408/Meta-CoT, a
guess: the Meta-CoT checkpoint was not known to be published). Set HF_TOKEN for gated or private repositories.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.cli_args import HelpFormatter  # noqa: E402
from modeling.bagel.hub import CKPTS_DIR, KNOWN_CHECKPOINTS, HubDownloadError, download_checkpoint  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("target", nargs="?", help="download one checkpoint into this folder instead")
    p.add_argument("repo", nargs="?", help="with TARGET: the repository id (default: BAGEL-7B-MoT's)")
    p.add_argument("--only", choices=sorted(KNOWN_CHECKPOINTS), help="download just this one (default: all)")
    p.add_argument("--ckpts-dir", help=f"folder of the <name>/ folders (default: {CKPTS_DIR})")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.target:
        jobs = [("bagel", Path(args.target), args.repo)]
    else:
        names = [args.only] if args.only else list(KNOWN_CHECKPOINTS)
        jobs = [(name, KNOWN_CHECKPOINTS[name].folder(args.ckpts_dir and Path(args.ckpts_dir)), None) for name in names]
    failed = 0
    for name, target, repo in jobs:
        title = KNOWN_CHECKPOINTS[name].title if repo is None else repo
        print(f"{title}: downloading {repo or KNOWN_CHECKPOINTS[name].repo_id} -> {target}", file=sys.stderr)
        try:
            download_checkpoint(name, target, repo)
        except HubDownloadError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
            continue
        print(f"{title}: done, {target}")
    if not failed and jobs:
        print(f"try it: python inference/edit_single.py --model-path {jobs[0][1]} --image IN.png --instruction '...'")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
