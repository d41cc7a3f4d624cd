"""Download ImgEdit's benchmark (HF dataset sysuyy/ImgEdit, Benchmark.tar) and convert the basic/singleturn set.

    python scripts/bench_data/convert_imgedit.py --out data/bench/imgedit [--singleturn-dir DIR]

--singleturn-dir: an already extracted Benchmark/singleturn folder (singleturn.json, judge_prompt.json, images).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inference.benchmark.converters.imgedit import convert_imgedit  # noqa: E402
from inference.cli_args import HelpFormatter  # noqa: E402
from modeling.bagel.hub import hub_error_message  # noqa: E402


def extract_singleturn(tar_path: str, dest: Path) -> Path:
    with tarfile.open(tar_path) as tar:
        members = [m for m in tar.getmembers() if "/singleturn/" in f"/{m.name}"]
        if not members:
            raise SystemExit(f"{tar_path} has no singleturn/ folder")
        tar.extractall(dest, members=members, filter="data")
    return next(dest.rglob("singleturn.json")).parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--out", required=True, help="benchmark folder to write")
    p.add_argument("--repo", default="sysuyy/ImgEdit", help="HF dataset id holding Benchmark.tar")
    p.add_argument("--singleturn-dir", default=None, help="an extracted Benchmark/singleturn folder (no download)")
    p.add_argument("--work-dir", default=None, help="where the tar is extracted (default: OUT/../.imgedit_raw)")
    args = p.parse_args()
    folder = Path(args.singleturn_dir) if args.singleturn_dir else None
    if folder is None:
        from huggingface_hub import hf_hub_download

        try:
            tar_path = hf_hub_download(args.repo, "Benchmark.tar", repo_type="dataset")
        except OSError as e:
            print(f"error: {hub_error_message(e, args.repo)}", file=sys.stderr)
            return 2
        folder = extract_singleturn(tar_path, Path(args.work_dir or Path(args.out).parent / ".imgedit_raw"))
    meta = folder / "singleturn.json"
    prompts = next((folder / n for n in ("judge_prompt.json", "prompts.json") if (folder / n).is_file()), None)
    if not meta.is_file() or prompts is None:
        raise SystemExit(f"{folder} needs singleturn.json and judge_prompt.json (or prompts.json)")
    print(convert_imgedit(meta, folder, prompts, args.out).summary("imgedit"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
