"""Averages of per-sample scores: per category, then macro (mean of category means) and micro (mean of samples).

Only ``ok`` records are averaged; failed ones are counted. A category mean of a sub-score uses the ok records that
carry that sub-score. GEdit's overall is the macro average of the per-category means of the per-sample O
(= sqrt(SC * PQ)); ImgEdit's (BAGEL's summary) is the micro average.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Sequence

from inference.benchmark.schema import BenchSample
from inference.benchmark.scorers.base import ScoreRecord


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class CategoryStats:
    category: str
    n_samples: int  # in the benchmark
    n_scored: int  # ok records
    n_failed: int  # records with a failure status
    n_missing: int  # neither generated nor scored
    means: dict[str, float] = field(default_factory=dict)  # "overall" and every sub-score


@dataclass
class Aggregate:
    scorer: str
    categories: list[CategoryStats]
    macro: dict[str, float]  # key -> mean over categories having that key
    micro: dict[str, float]  # key -> mean over all ok records having that key
    n_samples: int
    n_scored: int
    n_failed: int
    n_missing: int
    failure_statuses: dict[str, int]

    def to_dict(self) -> dict:
        return asdict(self)


def _means(records: Sequence[ScoreRecord]) -> dict[str, float]:
    values: dict[str, list[float]] = defaultdict(list)
    for r in records:
        values["overall"].append(r.overall)
        for key, value in r.subscores.items():
            values[key].append(value)
    return {key: mean(v) for key, v in values.items()}


def aggregate(scorer: str, samples: Sequence[BenchSample], records: Sequence[ScoreRecord],
              order: Sequence[str] = ()) -> Aggregate:
    """``order``: the benchmark's fixed category order (its categories first, any others after, sorted)."""
    by_id = {r.sample_id: r for r in records}
    per_category: dict[str, list[BenchSample]] = defaultdict(list)
    for s in samples:
        per_category[s.category].append(s)
    categories, statuses = [], defaultdict(int)
    ordered = [c for c in order if c in per_category] + sorted(set(per_category) - set(order))
    for category in ordered:
        members = [by_id.get(s.id) for s in per_category[category]]
        ok = [r for r in members if r is not None and r.ok]
        failed = [r for r in members if r is not None and not r.ok]
        for r in failed:
            statuses[r.status] += 1
        categories.append(CategoryStats(category, len(members), len(ok), len(failed),
                                        sum(r is None for r in members), _means(ok)))
    keys = sorted({k for c in categories for k in c.means})
    macro = {k: mean([c.means[k] for c in categories if k in c.means]) for k in keys}
    ids = {s.id for s in samples}
    all_ok = [r for r in records if r.ok and r.sample_id in ids]
    return Aggregate(scorer, categories, macro, _means(all_ok), len(samples), sum(c.n_scored for c in categories),
                     sum(c.n_failed for c in categories), sum(c.n_missing for c in categories), dict(statuses))
