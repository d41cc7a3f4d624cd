"""What every scorer returns: one ``ScoreRecord`` per (sample, scorer), failures included with their status.

Statuses: ``ok`` (scored), ``parse_fail`` (the judge never gave a parsable reply), ``error`` (the judge could not be
reached or refused), ``no_cot`` (a CoT-based scorer got no CoT). Only ``ok`` records enter the averages; the
others are counted per category in the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

from PIL import Image

from inference.benchmark.judges.base import JudgeReply
from inference.benchmark.schema import BenchSample


@dataclass
class ScoreRecord:
    sample_id: str
    scorer: str
    judge_model: str
    status: str
    overall: float | None = None
    subscores: dict[str, float] = field(default_factory=dict)
    explanation: str = ""
    replies: list[str] = field(default_factory=list)
    attempts: int = 0
    transport_retries: int = 0
    cache_hits: int = 0
    error: str | None = None
    judged_at: str | None = None  # UTC time; API judges drift, so every score says when it was given

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ScoreRecord":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def record_from_replies(sample_id: str, scorer: str, judge_model: str, replies: Sequence[JudgeReply]) -> ScoreRecord:
    """Bookkeeping of one or more judge questions; status is the first non-ok status (scores filled by caller)."""
    failed = next((r for r in replies if not r.ok), None)
    return ScoreRecord(
        sample_id=sample_id, scorer=scorer, judge_model=judge_model,
        status="ok" if failed is None else failed.status,
        replies=[text for r in replies for text in r.raw],
        attempts=sum(r.attempts for r in replies),
        transport_retries=sum(r.transport_retries for r in replies),
        cache_hits=sum(r.cache_hits for r in replies),
        error=None if failed is None else failed.error,
    )


class Scorer(Protocol):
    name: str
    judge_model: str

    def score(self, sample: BenchSample, source: Image.Image, edited: Image.Image,
              cot_text: str | None) -> ScoreRecord: ...
