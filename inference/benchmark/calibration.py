"""Judge calibration: agreement of judge scores with human scores on the same samples.

Targets (from the project brief): Pearson r >= 0.8 and mean absolute error <= 2.5 on the 0-10 scale. Run as
``python -m inference.benchmark.calibration --scores runs/eval/NAME/scores.jsonl --human human.csv`` where
``human.csv`` has columns ``id,score`` (0-10); ``--field`` picks the judge score (``overall`` or a sub-score).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import asdict, dataclass
from typing import Sequence

from inference.cli_args import HelpFormatter

R_TARGET = 0.8
MAE_TARGET = 2.5


@dataclass(frozen=True)
class Calibration:
    n: int
    pearson_r: float
    mae: float
    r_target: float = R_TARGET
    mae_target: float = MAE_TARGET

    @property
    def passes(self) -> bool:
        return self.pearson_r >= self.r_target and self.mae <= self.mae_target


def pearson_r(x: Sequence[float], y: Sequence[float]) -> float:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        raise ValueError("Pearson r is undefined when one side has no variance; score more varied samples")
    return sxy / math.sqrt(sxx * syy)


def calibrate(judge_scores: Sequence[float], human_scores: Sequence[float]) -> Calibration:
    if len(judge_scores) != len(human_scores):
        raise ValueError(f"{len(judge_scores)} judge scores but {len(human_scores)} human scores; pair them by id")
    if len(judge_scores) < 3:
        raise ValueError(f"calibration needs at least 3 paired samples, got {len(judge_scores)}")
    mae = sum(abs(a - b) for a, b in zip(judge_scores, human_scores)) / len(judge_scores)
    return Calibration(len(judge_scores), pearson_r(judge_scores, human_scores), mae)


def paired_scores(scores_jsonl: str, human_csv: str, field: str = "overall",
                  scorer: str | None = None) -> tuple[list[float], list[float], list[str]]:
    """(judge, human, ids) for samples scored ok by the judge and present in the human file."""
    with open(human_csv, newline="", encoding="utf-8") as f:
        human = {row["id"]: float(row["score"]) for row in csv.DictReader(f)}
    judge: dict[str, float] = {}
    with open(scores_jsonl, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("status") != "ok" or (scorer and row.get("scorer") != scorer):
                continue
            value = row.get("overall") if field == "overall" else row.get("subscores", {}).get(field)
            if value is not None:
                judge[row["id"]] = float(value)
    ids = sorted(set(judge) & set(human))
    return [judge[i] for i in ids], [human[i] for i in ids], ids


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--scores", required=True, help="scores.jsonl of an evaluation run")
    parser.add_argument("--human", required=True, help="CSV with columns id,score (0-10)")
    parser.add_argument("--field", default="overall", help="judge score to compare (overall or a sub-score)")
    parser.add_argument("--scorer", default=None, help="only rows of this scorer (when a run has several)")
    args = parser.parse_args(argv)
    judge, human, ids = paired_scores(args.scores, args.human, args.field, args.scorer)
    result = calibrate(judge, human)
    print(json.dumps({**asdict(result), "passes": result.passes}, indent=1))
    return 0 if result.passes else 1


if __name__ == "__main__":
    sys.exit(main())
