"""Side-by-side comparison of several evaluation runs of the same benchmark (checkpoints, think on/off).

``python -m inference.benchmark.compare runs/eval/A runs/eval/B ... --out runs/eval/compare_AB.md`` reads each
run's ``summary.json`` and writes a markdown table: one row per category plus macro and micro overall, one column
per run, later runs with their difference to the first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from inference.benchmark.files import atomic_write_text, read_json
from inference.cli_args import HelpFormatter


def _run_table(summary: dict, scorer: str, key: str) -> dict[str, float | None]:
    entry = summary["scorers"].get(scorer)
    if entry is None:
        return {}
    table = {c["category"]: c["means"].get(key) for c in entry["categories"]}
    table["ALL (macro)"] = entry["macro"].get(key)
    table["ALL (micro)"] = entry["micro"].get(key)
    return table


def compare_runs(run_dirs: Sequence[str | Path], scorer: str | None = None, key: str = "overall") -> str:
    summaries = []
    for run in run_dirs:
        summary = read_json(Path(run) / "summary.json")
        if summary is None:
            raise FileNotFoundError(f"{run}/summary.json not found; run the report stage for that run first")
        summaries.append(summary)
    scorer = scorer or next(iter(summaries[0]["scorers"]))
    tables = [_run_table(s, scorer, key) for s in summaries]
    categories = [c for c in tables[0] if not c.startswith("ALL")]
    categories += sorted({c for t in tables[1:] for c in t if not c.startswith("ALL")} - set(categories))
    names = [Path(r).name for r in run_dirs]
    lines = [f"# Comparison: {scorer} / {key}", "", "| category | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for category in [*categories, "ALL (macro)", "ALL (micro)"]:
        base = tables[0].get(category)
        cells = []
        for i, table in enumerate(tables):
            value = table.get(category)
            cell = "" if value is None else f"{value:.3f}"
            if i and value is not None and base is not None:
                cell += f" ({value - base:+.3f})"
            cells.append(cell)
        label = f"**{category}**" if category.startswith("ALL") else category
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare evaluation runs side by side.", formatter_class=HelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders (each with summary.json)")
    parser.add_argument("--out", required=True, help="markdown file to write")
    parser.add_argument("--scorer", default=None, help="scorer to compare (default: the first of the first run)")
    parser.add_argument("--key", default="overall", help="score to compare (overall or a sub-score)")
    args = parser.parse_args(argv)
    text = compare_runs(args.runs, args.scorer, args.key)
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
