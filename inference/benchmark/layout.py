"""Where a run keeps its files (``runs/eval/NAME/``); one place so every stage agrees.

    .lock                     held by the command using the folder (pid, host, start, command line)
    config.json               settings of the run (checked on resume) and the judge of each scorer
    images/<id>.png           edited images
    gen/<id>.json             one generation record per finished sample (CoT text, settings, seed, time)
    rounds/<id>.round<k>.png  each reflection round's image (editors that reflect, inference/benchmark/rounds.py)
    scores/<scorer>/<id>.json one score record per judged sample (also failures, with their status)
    judge_cache/              raw judge replies keyed by request hash (re-runs cost nothing)
    scores.jsonl, per_category.csv, summary.md, summary.json, grids/<category>.png   the report
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inference.benchmark.schema import make_safe_id


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    def image(self, sample_id: str) -> Path:
        return self.root / "images" / f"{sample_id}.png"

    def round_image(self, sample_id: str, round_number: int) -> Path:
        return self.root / "rounds" / f"{sample_id}.round{round_number}.png"

    def gen_record(self, sample_id: str) -> Path:
        return self.root / "gen" / f"{sample_id}.json"

    def score_record(self, scorer: str, sample_id: str) -> Path:
        return self.root / "scores" / scorer / f"{sample_id}.json"

    @property
    def judge_cache(self) -> Path:
        return self.root / "judge_cache"

    @property
    def samples_report(self) -> Path:
        return self.root / "scores.jsonl"

    @property
    def category_csv(self) -> Path:
        return self.root / "per_category.csv"

    @property
    def summary_md(self) -> Path:
        return self.root / "summary.md"

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"

    def grid(self, category: str) -> Path:
        return self.root / "grids" / f"{make_safe_id(category)}.png"
