"""Scoring stage: judge every generated sample once per scorer, in parallel threads, resumably.

A sample is skipped when its score record exists, is ``ok`` and came from the same judge model. Failures are asked
again on a re-run; their replies come from the judge cache, so only transport failures reach the judge again.
Records are written one file per sample, atomically, as soon as each finishes.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone

from tqdm import tqdm

from data.image_io import ImageLoadError, load_image
from inference.benchmark.files import atomic_write_json, read_json
from inference.benchmark.generate import is_generated
from inference.benchmark.layout import RunLayout
from inference.benchmark.rounds import round_scores
from inference.benchmark.schema import BenchSample, LoadedBenchmark
from inference.benchmark.scorers.base import Scorer, ScoreRecord

log = logging.getLogger(__name__)


@dataclass
class ScoreOutcome:
    scored: dict[str, str] = field(default_factory=dict)  # id -> status of this run's record
    already_done: list[str] = field(default_factory=list)
    not_generated: list[str] = field(default_factory=list)

    @property
    def failed(self) -> dict[str, str]:
        return {k: v for k, v in self.scored.items() if v != "ok"}


def load_score(layout: RunLayout, scorer_name: str, sample_id: str) -> ScoreRecord | None:
    data = read_json(layout.score_record(scorer_name, sample_id))
    try:
        return ScoreRecord.from_dict(data) if isinstance(data, dict) else None
    except TypeError:
        return None


def _score_one(bench: LoadedBenchmark, layout: RunLayout, scorer: Scorer, sample: BenchSample) -> ScoreRecord:
    gen = read_json(layout.gen_record(sample.id)) or {}
    try:
        source = bench.open_source(sample)
        edited = load_image(layout.image(sample.id))
        record = scorer.score(sample, source, edited, gen.get("cot_text"))
        if record.ok and gen.get("reflection"):
            record.subscores.update(round_scores(scorer, sample, source, gen["reflection"], layout))
    except ImageLoadError as e:
        record = ScoreRecord(sample.id, scorer.name, scorer.judge_model, "error", error=f"unreadable image: {e}")
    except Exception as e:  # a scorer bug or missing prompt is recorded per sample and shown in the report
        log.exception("scoring %s with %s failed", sample.id, scorer.name)
        record = ScoreRecord(sample.id, scorer.name, scorer.judge_model, "error", error=f"{type(e).__name__}: {e}")
    record.judged_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(layout.score_record(scorer.name, sample.id), record.to_dict())
    return record


def run_scoring(bench: LoadedBenchmark, layout: RunLayout, scorer: Scorer, concurrency: int = 8,
                show_progress: bool = True) -> ScoreOutcome:
    outcome = ScoreOutcome()
    todo = []
    for sample in bench.samples:
        if not is_generated(layout, sample.id):
            outcome.not_generated.append(sample.id)
            continue
        existing = load_score(layout, scorer.name, sample.id)
        if existing is not None and existing.ok and existing.judge_model == scorer.judge_model:
            outcome.already_done.append(sample.id)
        else:
            todo.append(sample)
    if outcome.not_generated:
        log.warning("%d samples have no generated image yet and are not scored", len(outcome.not_generated))
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(_score_one, bench, layout, scorer, s) for s in todo]
        for future in tqdm(as_completed(futures), total=len(futures), desc=f"score[{scorer.name}]",
                           disable=not show_progress):
            record = future.result()
            outcome.scored[record.sample_id] = record.status
    return outcome
