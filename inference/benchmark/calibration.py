"""Judge calibration: agreement of judge scores with human scores on the same samples.

Targets (from the project brief): Pearson r >= 0.8 and mean absolute error <= 2.5 on the 0-10 scale, measured on at
least ``--min-samples`` paired samples (500, as many human labels as the paper used); Spearman's rho is reported
beside them. Run as ``python -m inference.benchmark.calibration --scores runs/eval/NAME/scores.jsonl --human
human.csv [--plot judge_vs_human.png]`` where ``human.csv`` has columns ``id,score`` (0-10); ``--field`` picks the
judge score (``overall`` or a sub-score). Exit status 0 only when the judge is certified.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy.stats import spearmanr
from inference.cli_args import HelpFormatter

R_TARGET = 0.8
MAE_TARGET = 2.5
MIN_SAMPLES = 500


@dataclass(frozen=True)
class Calibration:
    n: int
    pearson_r: float
    spearman_rho: float
    mae: float
    r_target: float = R_TARGET
    mae_target: float = MAE_TARGET
    min_samples: int = MIN_SAMPLES

    @property
    def passes(self) -> bool:
        """The agreement targets are met (whatever the sample count)."""
        return self.pearson_r >= self.r_target and self.mae <= self.mae_target

    @property
    def certified(self) -> bool:
        """The targets are met on enough samples to trust them."""
        return self.passes and self.n >= self.min_samples


def pearson_r(x: Sequence[float], y: Sequence[float]) -> float:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        raise ValueError("Pearson r is undefined when one side has no variance; score more varied samples")
    return sxy / math.sqrt(sxx * syy)


def calibrate(judge_scores: Sequence[float], human_scores: Sequence[float],
              min_samples: int = MIN_SAMPLES) -> Calibration:
    if len(judge_scores) != len(human_scores):
        raise ValueError(f"{len(judge_scores)} judge scores but {len(human_scores)} human scores; pair them by id")
    if len(judge_scores) < 3:
        raise ValueError(f"calibration needs at least 3 paired samples, got {len(judge_scores)}")
    mae = sum(abs(a - b) for a, b in zip(judge_scores, human_scores)) / len(judge_scores)
    r = pearson_r(judge_scores, human_scores)
    rho = float(spearmanr(judge_scores, human_scores).statistic)
    return Calibration(len(judge_scores), r, rho, mae, min_samples=min_samples)


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


def scatter_png(judge: Sequence[float], human: Sequence[float], path: str | Path, title: str,
                side: int = 480, low: float = 0.0, high: float = 10.0) -> None:
    """Judge (y) against human (x) score with the y = x line; each sample a translucent dot, so piles of samples
    on the same score pair show darker."""
    margin, radius, alpha = 48, 4, 0.35
    plot = side - 2 * margin

    def xy(h: float, j: float) -> tuple[float, float]:
        clamp = lambda v: min(max(v, low), high)  # noqa: E731
        return (margin + (clamp(h) - low) / (high - low) * plot,
                side - margin - (clamp(j) - low) / (high - low) * plot)

    image = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(image)
    for tick in range(int(low), int(high) + 1, 2):
        x, y = xy(tick, tick)
        draw.line([(x, side - margin), (x, margin)], fill=(235, 235, 235))
        draw.line([(margin, y), (side - margin, y)], fill=(235, 235, 235))
        draw.text((x - 3, side - margin + 6), str(tick), fill="black")
        draw.text((margin - 18, y - 5), str(tick), fill="black")
    draw.rectangle([margin, margin, side - margin, side - margin], outline="black")
    draw.line([xy(low, low), xy(high, high)], fill=(200, 60, 60), width=2)
    count = np.zeros((side, side))  # dots covering each pixel
    offsets = np.arange(-radius, radius + 1)
    disc = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius ** 2  # (2r+1, 2r+1)
    for (h, j), n in Counter(zip(human, judge)).items():
        x, y = (round(v) for v in xy(h, j))  # inside the frame, so the disc fits in the image
        count[y - radius:y + radius + 1, x - radius:x + radius + 1] += n * disc
    cover = (1 - (1 - alpha) ** count)[..., None]  # each dot lets (1 - alpha) of what is below through
    pixels = np.asarray(image, dtype=np.float64) * (1 - cover) + np.array([30, 90, 200]) * cover
    image = Image.fromarray(pixels.round().astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.text((margin, 14), title, fill="black")
    draw.text((side // 2 - 40, side - 18), "human score", fill="black")
    draw.text((4, margin - 16), "judge", fill="black")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--scores", required=True, help="scores.jsonl of an evaluation run")
    parser.add_argument("--human", required=True, help="CSV with columns id,score (0-10)")
    parser.add_argument("--field", default="overall", help="judge score to compare (overall or a sub-score)")
    parser.add_argument("--scorer", default=None, help="only rows of this scorer (when a run has several)")
    parser.add_argument("--min-samples", type=int, default=MIN_SAMPLES,
                        help="fewest paired samples a certification may rest on (the paper used 500 human labels)")
    parser.add_argument("--plot", default=None, help="write a judge-vs-human scatter plot (PNG) here")
    args = parser.parse_args(argv)
    if args.min_samples < 3:
        parser.error("--min-samples must be >= 3")
    try:
        judge, human, ids = paired_scores(args.scores, args.human, args.field, args.scorer)
        result = calibrate(judge, human, args.min_samples)
    except (OSError, ValueError, KeyError) as e:  # missing file, bad CSV/JSON, too few or constant scores
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(json.dumps({**asdict(result), "passes": result.passes, "certified": result.certified}, indent=1))
    if args.plot:
        scatter_png(judge, human, args.plot, f"{args.field}: n={result.n} r={result.pearson_r:.3f} "
                                             f"rho={result.spearman_rho:.3f} MAE={result.mae:.2f}")
    if result.n < args.min_samples:
        print(f"not certified: {result.n} paired samples < --min-samples {args.min_samples}; label more samples "
              "(the statistics above are indicative only)", file=sys.stderr)
    elif not result.passes:
        print(f"not certified: needs Pearson r >= {result.r_target} and MAE <= {result.mae_target}",
              file=sys.stderr)
    return 0 if result.certified else 1


if __name__ == "__main__":
    sys.exit(main())
