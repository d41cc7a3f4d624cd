"""Score degenerate and partial edits with the exact judge over a ShapesEdit benchmark folder.

    python -m scripts.shapes_edit.judge_baselines --bench-dir datasets/shapes_edit_bench --out runs/judge_baselines

Writes OUT/baselines.json (per-sample rows and per-category / overall means) and OUT/baselines.md, and prints the
markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from data.shapes_edit.baselines import BASELINES, load_records, markdown, score_baselines, summarize
from data.shapes_edit.export import atomic_write_bytes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench-dir", required=True, help="ShapesEdit benchmark folder (samples.jsonl + images/)")
    p.add_argument("--out", default=None, help="folder for baselines.json / baselines.md (default: print only)")
    p.add_argument("--baselines", default=",".join(BASELINES), help="comma list, default: all of them")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.baselines.split(",") if n.strip()]
    try:
        records = load_records(args.bench_dir)
        began = time.perf_counter()
        rows = score_baselines(records, names)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = summarize(rows)
    table = markdown(summary)
    print(table)
    print(f"{len(rows)} scored images in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "baselines.json", json.dumps({"summary": summary, "rows": rows}, indent=1).encode())
        atomic_write_bytes(out / "baselines.md", table.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
