"""Counts of skipped samples per dataset and reason, logged as they happen (first few, then every 1000th)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

LOG_FIRST = 5


class SkipCounters:
    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def add(self, dataset: str, reason: str, detail: str = "", where: str = "") -> None:
        per_dataset = self.counts.setdefault(dataset, {})
        n = per_dataset.get(reason, 0) + 1
        per_dataset[reason] = n
        if n <= LOG_FIRST or n % 1000 == 0:
            log.warning("skipped sample #%d of %s for %s at %s: %s", n, dataset, reason, where or "?", detail)

    def total(self) -> int:
        return sum(n for reasons in self.counts.values() for n in reasons.values())

    def state(self) -> dict[str, dict[str, int]]:
        return {dataset: dict(reasons) for dataset, reasons in self.counts.items()}

    def load_state(self, state: dict[str, dict[str, int]]) -> None:
        self.counts = {dataset: dict(reasons) for dataset, reasons in state.items()}


def merge_counts(states: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """Sum of several workers' counts (for logging over a rank or the whole run)."""
    total: dict[str, dict[str, int]] = {}
    for state in states:
        for dataset, reasons in state.items():
            for reason, n in reasons.items():
                total.setdefault(dataset, {})[reason] = total.get(dataset, {}).get(reason, 0) + n
    return total
