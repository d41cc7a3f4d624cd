"""Build the ShapesEdit demo model on one GPU: data, tokenizer, autoencoder, initial folder, SFT, export, held-out
evaluation (exact judge), and a copy of the model into the repository.

    python -m scripts.shapes_demo.build_demo --run-dir runs/shapes_demo --steps 3000 --ship-dir assets/shapes_edit_bagel

Every stage is skipped when its output exists, so re-running the command resumes (SFT from its last checkpoint).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from data.shapes_edit.ablation import VARIANTS
from modeling.bagel.config import CheckpointError
from scripts.shapes_demo.args import add_settings_flags, check_paths, settings_from_args
from train.shapes_demo.pipeline import demo_jobs, ensure_bench, prepare, run_jobs
from train.shapes_demo.ship import ship_model

STAGES = ("prepare", "sft", "eval", "ship")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_settings_flags(p, steps=3000)
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma list of {', '.join(STAGES)}")
    p.add_argument("--ship-dir", default="assets/shapes_edit_bagel", help="where the final folder is copied")
    p.add_argument("--seed", type=int, default=0, help="SFT seed")
    args = p.parse_args(argv)
    check_paths(p, args)
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown:
        p.error(f"unknown stage(s) {sorted(unknown)}; choose among {', '.join(STAGES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return build(args)
    except (FileNotFoundError, ValueError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def build(args: argparse.Namespace) -> int:
    s = settings_from_args(args)
    stages = args.stages.split(",")
    began = time.perf_counter()
    sft, evaluation = demo_jobs(s, args.seed)
    if "prepare" in stages:
        prepare(s, [VARIANTS["all"]])
    for stage, job in (("sft", sft), ("eval", evaluation)):
        if stage in stages and run_jobs(s, [job], 1):
            return 1
    if "ship" in stages:
        summary = json.loads(evaluation.done.read_text()) if evaluation.done.exists() else None
        ae_metrics = json.loads((s.run / "ae" / "ae_metrics.json").read_text())
        card = ship_model(sft.done.parent, ensure_bench(s), args.ship_dir,
                          {"sft_steps": s.steps, "train_samples": s.train_samples, "autoencoder": ae_metrics,
                           "held_out_eval": summary, "bench_seed": s.bench_seed})
        print(f"shipped {args.ship_dir}: {card['folder_megabytes']} MB")
    print(f"build_demo: {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
