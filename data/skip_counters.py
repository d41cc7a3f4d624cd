"""Counts of skipped rows per dataset and reason, and the guard that stops a stream in which nothing is usable.

Logging is bounded however many rows are skipped: the first skip of each (dataset, reason) is logged with its
detail, after that only the totals, at most once every ``log_every_s`` seconds.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

log = logging.getLogger(__name__)

# a count of whole shards (a parquet footer or JSONL file that could not be read when listing: its rows are unknown)
UNLISTABLE_SHARD = "unlistable_shard"


class SkipCounters:
    def __init__(self, log_every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self.log_every_s = log_every_s
        self.clock = clock
        self._last_summary = clock()
        self._unlogged = 0  # skips since the last summary line

    def add(self, dataset: str, reason: str, detail: str = "", where: str = "") -> None:
        per_dataset = self.counts.setdefault(dataset, {})
        n = per_dataset.get(reason, 0) + 1
        per_dataset[reason] = n
        if n == 1:
            log.warning("dataset %s: skipped a row for %s at %s: %s (further skips are counted, totals logged every "
                        "%.0f s)", dataset, reason, where or "?", detail, self.log_every_s)
            return
        self._unlogged += 1
        now = self.clock()
        if now - self._last_summary >= self.log_every_s:
            log.warning("skipped rows so far (%d new): %s", self._unlogged, format_counts(self.counts))
            self._last_summary, self._unlogged = now, 0

    def total(self) -> int:
        return sum(n for reasons in self.counts.values() for n in reasons.values())

    def state(self) -> dict[str, dict[str, int]]:
        return {dataset: dict(reasons) for dataset, reasons in self.counts.items()}

    def load_state(self, state: dict[str, dict[str, int]]) -> None:
        self.counts = {dataset: dict(reasons) for dataset, reasons in state.items()}


def format_counts(counts: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{dataset}: " + ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
                     for dataset, reasons in sorted(counts.items()))


def merge_counts(states: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """Sum of several workers' counts (for logging over a rank or the whole run)."""
    total: dict[str, dict[str, int]] = {}
    for state in states:
        for dataset, reasons in state.items():
            for reason, n in reasons.items():
                total.setdefault(dataset, {})[reason] = total.get(dataset, {}).get(reason, 0) + n
    return total


class NoUsableSampleError(RuntimeError):
    """A data worker skipped too many rows in a row: no sample of the mix fits, so training could never step."""

    @property
    def line(self) -> str:
        """The one-line message, also when a DataLoader re-raised this error with the worker's traceback in it."""
        lines = [line for line in str(self).splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        prefix = f"{type(self).__module__}.{type(self).__qualname__}: "
        return last[len(prefix):] if last.startswith(prefix) else last


class SkipStreak:
    """The rows skipped since the last usable sample; ``add`` raises ``NoUsableSampleError`` past ``limit``."""

    def __init__(self, limit: int, max_tokens_per_sample: int, worker: str = "") -> None:
        if limit < 1:
            raise ValueError(f"max_consecutive_skips must be >= 1, got {limit}")
        self.limit = limit
        self.max_tokens_per_sample = max_tokens_per_sample
        self.worker = worker  # e.g. 'data worker 3 of 16', for the message
        self.reset()

    def reset(self) -> None:
        self.length = 0
        self.reasons: dict[str, int] = {}
        self.datasets: list[str] = []
        self.min_tokens: int | None = None
        self.max_tokens: int | None = None

    def add(self, dataset: str, reason: str, num_tokens: int | None = None) -> None:
        self.length += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if dataset not in self.datasets:
            self.datasets.append(dataset)
        if num_tokens is not None:
            self.min_tokens = num_tokens if self.min_tokens is None else min(self.min_tokens, num_tokens)
            self.max_tokens = num_tokens if self.max_tokens is None else max(self.max_tokens, num_tokens)
        if self.length >= self.limit:
            raise NoUsableSampleError(self.message())

    def message(self) -> str:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.reasons.items(), key=lambda kv: -kv[1]))
        if self.min_tokens is not None and self.reasons.get("too_long", 0) * 2 >= self.length:
            fix = (f"samples had {self.min_tokens}..{self.max_tokens} tokens, tokens.max_num_tokens_per_sample is "
                   f"{self.max_tokens_per_sample}: raise it (with max_num_tokens) or shrink the image transforms")
        else:
            fix = "fix or drop these datasets, or use fewer data workers when a dataset has few rows"
        where = f"{self.worker}: " if self.worker else ""
        return (f"{where}no usable sample in {self.length} consecutive rows of datasets [{', '.join(self.datasets)}] "
                f"(skipped: {reasons}); {fix} (the mix's max_consecutive_skips sets this limit)")
