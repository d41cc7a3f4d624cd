"""Scoring in the background: ``submit`` a rollout batch, keep generating, collect the scores later.

One worker thread scores the submitted batches in order (a reward parallelises inside a batch itself, e.g. CEC's
concurrent judge requests), so the rewards of batch k are computed while the trainer generates batch k+1. Dropped
samples (``score=None``) are counted by reason and logged; an exception in the reward (a bug, not a judge
failure, which rewards report as drops) reaches the caller through the future and is counted too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

from train.rl.rewards.base import RewardFunction, RewardRequest, RewardResult

log = logging.getLogger(__name__)


@dataclass
class RewardStats:
    batches: int = 0
    samples: int = 0
    scored: int = 0
    dropped: int = 0
    failed_batches: int = 0  # the reward raised
    busy_s: float = 0.0  # time the worker spent scoring
    drop_reasons: Counter = field(default_factory=Counter)  # first words of the error ("cec error", ...)

    def as_dict(self) -> dict:
        return {"batches": self.batches, "samples": self.samples, "scored": self.scored, "dropped": self.dropped,
                "failed_batches": self.failed_batches, "busy_s": round(self.busy_s, 3),
                "drop_reasons": dict(self.drop_reasons)}


def drop_reason(error: str | None) -> str:
    return (error or "no reason given").split(":", 1)[0]


class RewardService:
    def __init__(self, reward: RewardFunction):
        self.reward = reward
        self._stats = RewardStats()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"reward-{reward.name}")

    def submit(self, requests: Sequence[RewardRequest]) -> Future[list[RewardResult]]:
        """Queue a batch for scoring; the future holds one result per request, in order."""
        return self._pool.submit(self._score, list(requests))

    def _score(self, requests: list[RewardRequest]) -> list[RewardResult]:
        start = time.perf_counter()
        try:
            results = self.reward(requests)
            if len(results) != len(requests):
                raise RuntimeError(f"reward {self.reward.name!r} returned {len(results)} results "
                                   f"for {len(requests)} requests")
        except Exception:
            with self._lock:
                self._stats.failed_batches += 1
                self._stats.busy_s += time.perf_counter() - start
            raise
        dropped = [(q.sample_id, r.error) for q, r in zip(requests, results) if r.score is None]
        for sample_id, error in dropped:
            log.warning("reward %s dropped %s: %s", self.reward.name, sample_id, error)
        with self._lock:
            s = self._stats
            s.batches += 1
            s.samples += len(requests)
            s.dropped += len(dropped)
            s.scored += len(requests) - len(dropped)
            s.drop_reasons.update(drop_reason(error) for _, error in dropped)
            s.busy_s += time.perf_counter() - start
        return results

    def stats(self) -> RewardStats:
        """A snapshot of the counters (safe to read while batches are being scored)."""
        with self._lock:
            s = self._stats
            return RewardStats(s.batches, s.samples, s.scored, s.dropped, s.failed_batches, s.busy_s,
                               Counter(s.drop_reasons))

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking batches; with ``wait`` finish the queued ones, else cancel those not started."""
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    def __enter__(self) -> "RewardService":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown(wait=exc[0] is None)
