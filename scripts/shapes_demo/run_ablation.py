"""Run the Meta-CoT ablation in the ShapesEdit world: every row x seed trained with the same data budget and steps,
several small runs sharing one GPU at once, then evaluated on the held-out benchmark with the exact judge.

    python -m scripts.shapes_demo.run_ablation --run-dir runs/shapes_demo --seeds 0,1,2 --concurrency 6 --steps 1500
    python -m scripts.shapes_demo.report --run-dir runs/shapes_demo        # table, plot, baselines

Finished runs and evaluations are skipped, so the same command resumes after an interruption; over several GPU
sittings, carrying back RUN/ae and RUN/tokenizer (data and the initial folder are regenerated identically from
them), RUN/jobs.json and each RUN/rows/*/seed*/eval is enough (evaluated runs are not trained again).
"""

from __future__ import annotations

import argparse
import sys

from data.shapes_edit.ablation import ROWS, ROWS_BY_NAME
from modeling.bagel.config import CheckpointError
from scripts.shapes_demo.args import add_settings_flags, check_paths, settings_from_args
from train.shapes_demo.pipeline import prepare, row_jobs, run_jobs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_settings_flags(p, steps=1500)
    p.add_argument("--rows", default=",".join(r.name for r in ROWS), help="comma list of ablation rows")
    p.add_argument("--seeds", default="0,1,2", help="comma list of SFT seeds")
    p.add_argument("--concurrency", type=int, default=6, help="runs at once on the GPU")
    p.add_argument("--stages", default="prepare,sft,eval", help="comma list of prepare, sft, eval")
    args = p.parse_args(argv)
    check_paths(p, args)
    unknown = [r for r in args.rows.split(",") if r not in ROWS_BY_NAME]
    if unknown:
        p.error(f"unknown row(s) {unknown}; choose among {', '.join(ROWS_BY_NAME)}")
    if args.concurrency < 1:
        p.error("--concurrency must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except (FileNotFoundError, ValueError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    s = settings_from_args(args)
    rows = [ROWS_BY_NAME[r] for r in args.rows.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    jobs = [row_jobs(s, row, seed) for row in rows for seed in seeds]
    stages = args.stages.split(",")
    if "prepare" in stages:
        prepare(s, list({row.data.name: row.data for row in rows}.values()))
    failed = []
    if "sft" in stages:  # a run evaluated in an earlier sitting (its weights not carried back) is not trained again
        failed += run_jobs(s, [sft for sft, ev in jobs if not ev.done.exists()], args.concurrency)
    if "eval" in stages:
        failed += run_jobs(s, [ev for sft, ev in jobs if sft.done.exists()], args.concurrency)
    if failed:
        print(f"{len(failed)} job(s) failed: {', '.join(failed)}; re-run the same command to retry", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
