"""Check a reward against degenerate outputs (blank, noise, unedited source, blur) before training on it.

    python scripts/check_reward.py --bench-dir datasets/shapes_edit_bench --reward shapes_exact
    python scripts/check_reward.py --bench-dir data/bench/gedit_en --edits runs/eval/ckpt_think \\
        --reward cec --settings '{"base_url": "http://127.0.0.1:8000/v1", "model": "Qwen/Qwen2.5-VL-72B-Instruct"}'
    python scripts/check_reward.py --bench-dir ... --config configs/rl/NAME.yaml   # its reward: {kind, settings}

Prints the mean score of each kind next to the real edits' and how many samples score at or above their real edit;
exit status 1 when a degenerate kind's mean comes within --margin (default 0) of the real edits' mean or above (or
no real edit could be scored), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from inference.benchmark.schema import BenchmarkFormatError  # noqa: E402
from train.rl.rewards.check import check_reward, load_cases  # noqa: E402
from train.rl.rewards.registry import REWARD_KINDS, build_reward  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bench-dir", required=True, help="benchmark folder (samples.jsonl + images/)")
    p.add_argument("--edits", default=None, help="evaluation run folder whose images are the real edits; "
                                                  "without it, the benchmark's reference target images")
    p.add_argument("--reward", choices=REWARD_KINDS, default=None, help="reward kind (or take it from --config)")
    p.add_argument("--settings", default="{}", help="reward settings as a JSON object")
    p.add_argument("--config", default=None, help="YAML file with a 'reward: {kind, settings}' section")
    p.add_argument("--limit", type=int, default=50, help="samples to check (first N of the benchmark)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise images")
    p.add_argument("--margin", type=float, default=0.0,
                   help="fail unless every degenerate kind's mean is more than this below the real edits' mean")
    p.add_argument("--out", default=None, help="also write the summary as JSON here")
    args = p.parse_args(argv)
    try:
        args.settings = json.loads(args.settings)
    except ValueError as e:
        p.error(f"--settings is not JSON ({e}); write e.g. '{{\"dimension\": \"overall\"}}'")
    if not isinstance(args.settings, dict):
        p.error("--settings must be a JSON object")
    if args.config is not None:
        section = (yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}).get("reward")
        if not isinstance(section, dict) or "kind" not in section:
            p.error(f"{args.config} has no 'reward:' section with a 'kind'")
        args.reward = args.reward or section["kind"]
        args.settings = {**(section.get("settings") or {}), **args.settings}
    if args.reward is None:
        p.error("name the reward with --reward KIND or --config FILE")
    if args.limit < 1:
        p.error("--limit must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        reward = build_reward(args.reward, args.settings)
        cases, skipped = load_cases(args.bench_dir, args.edits, args.limit)
    except (ValueError, BenchmarkFormatError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    if not cases:
        print("error: no sample has a real edit to compare with", file=sys.stderr)
        return 2
    check = check_reward(reward, cases, args.seed, args.margin)
    print(check.table())
    if args.out:
        summary = {"reward": args.reward, "settings": args.settings, "samples": len(cases), "margin": args.margin,
                   "passes": check.passes, "flagged": check.flagged,
                   "kinds": {k: {"mean": s.mean, "scored": len(s.scores), "dropped": s.dropped,
                                 "at_or_above_real": s.at_or_above_real, "paired": s.paired}
                             for k, s in check.summaries.items()}}
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0 if check.passes else 1


if __name__ == "__main__":
    sys.exit(main())
