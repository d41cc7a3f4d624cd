"""Write the ablation report of a run folder: markdown table (seen / unseen, the paper's dimensions, GPU seconds,
which gaps exceed the seed spread), per-category table, PNG plot, and the judge baselines on the same benchmark.

    python -m scripts.shapes_demo.report --run-dir runs/shapes_demo [--out runs/shapes_demo/report]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data.shapes_edit.baselines import DEGENERATE, load_records, score_baselines, summarize
from data.shapes_edit.export import atomic_write_bytes
from train.shapes_demo.plot import plot_ablation
from train.shapes_demo.report import collect, write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default="runs/shapes_demo", help="the folder run_ablation.py wrote")
    p.add_argument("--out", default=None, help="default: RUN/report")
    p.add_argument("--bench-dir", default=None, help="the benchmark the runs were evaluated on (default: the one "
                   "RUN/bench_* folder)")
    return p.parse_args(argv)


def judge_baselines(run: Path, bench: Path) -> dict:
    """The baselines' summary on the benchmark, computed once and kept in RUN/baselines_<bench>.json."""
    path = run / f"baselines_{bench.name}.json"
    if not path.exists():
        atomic_write_bytes(path, json.dumps(summarize(score_baselines(load_records(bench)))).encode())
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Path(args.run_dir)
    results = collect(run)
    if not results:
        print(f"error: no evaluated ablation run under {run}/rows; run scripts/shapes_demo/run_ablation.py first",
              file=sys.stderr)
        return 2
    benches = [Path(args.bench_dir)] if args.bench_dir else sorted(run.glob("bench_*"))
    if len(benches) != 1:
        print(f"error: {len(benches)} benchmark folders under {run}; pass --bench-dir", file=sys.stderr)
        return 2
    baselines = judge_baselines(run, benches[0])
    floor = max(s["overall"]["overall"] for name, s in baselines.items() if name in DEGENERATE)
    path = write_report(results, baselines, args.out or run / "report",
                        lambda rows, png: plot_ablation(rows, png, floor))
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
