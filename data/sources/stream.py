"""An endless, deterministic, resumable row stream over a group's sources, split across all data workers.

The split: the group's read units (row groups / JSONL blocks of all its datasets, in a fixed order) are shuffled per
epoch with ``seed + epoch`` (the same permutation on every worker) and dealt out ``unit_k -> worker k % G`` with
``G = world_size x dataloader workers`` (nodes x ranks flatten into the world rank). With fewer units than workers
(a small dataset), every worker reads every unit and keeps the rows whose global index is its own modulo G.
Either way each row goes to exactly one worker per epoch. Rows inside a unit are shuffled per (epoch, unit).

The state is three integers (epoch, unit position, row position): restoring it and reading on gives exactly the rows
an uninterrupted stream would have given.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from data.render import SampleError
from data.sources.base import ReadUnit, Source

log = logging.getLogger(__name__)
EPOCH_LOG_EVERY_S = 60.0  # at most one 'starts epoch' line per stream per minute


@dataclass(frozen=True)
class CatalogUnit:
    source: int  # index of the source (dataset) in the group
    unit: ReadUnit
    first_row: int  # index of the unit's first row among all rows of the group
    num_rows: int  # rows used (a dataset's sample cap may cut its last unit)


def build_catalog(sources: list[Source], caps: list[int | None]) -> list[CatalogUnit]:
    """Every non-empty unit of every source, in order, up to each source's cap (None: all its rows).

    An empty unit (a 0-row shard or row group) is passed over; only a reached cap ends a source's listing.
    """
    catalog, first_row = [], 0
    for s, (source, cap) in enumerate(zip(sources, caps)):
        used = 0
        for unit in source.list_units():
            if unit.num_rows == 0:
                continue
            rows = unit.num_rows if cap is None else min(unit.num_rows, cap - used)
            if rows <= 0:
                break
            catalog.append(CatalogUnit(s, unit, first_row, rows))
            first_row += rows
            used += rows
    return catalog


class ShardedStream:
    def __init__(self, sources: list[Source], caps: list[int | None], seed: int, worker: int, num_workers: int,
                 shuffle: bool = True) -> None:
        if not 0 <= worker < num_workers:
            raise ValueError(f"worker {worker} outside 0..{num_workers - 1}")
        self.sources = sources
        self.catalog = build_catalog(sources, caps)
        self.total_rows = sum(u.num_rows for u in self.catalog)
        names = ", ".join(s.name for s in sources)
        if self.total_rows < num_workers:
            raise ValueError(f"datasets [{names}] have {self.total_rows} usable rows, fewer than the {num_workers} "
                             "data workers (world size x loader workers); add data or use fewer workers")
        self.seed, self.worker, self.num_workers, self.shuffle = seed, worker, num_workers, shuffle
        self.by_unit = len(self.catalog) >= num_workers
        self.epoch = self.unit_pos = self.row_pos = 0
        self._plan: list[tuple[int, np.ndarray]] | None = None  # this worker's (catalog index, row order) per epoch
        self._rows: tuple[int, list] | None = None  # (catalog index, rows) of the unit in hand
        self._epoch_logged_at = -EPOCH_LOG_EVERY_S

    def state(self) -> dict:
        return {"epoch": self.epoch, "unit_pos": self.unit_pos, "row_pos": self.row_pos}

    def load_state(self, state: dict) -> None:
        self.epoch, self.unit_pos, self.row_pos = int(state["epoch"]), int(state["unit_pos"]), int(state["row_pos"])
        self._plan = self._rows = None

    def _epoch_plan(self) -> list[tuple[int, np.ndarray]]:
        n = len(self.catalog)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
        plan = []
        for k, c in enumerate(order.tolist()):
            unit = self.catalog[c]
            if self.by_unit:
                if k % self.num_workers != self.worker:
                    continue
                rows = np.arange(unit.num_rows)
            else:
                rows = np.arange(unit.num_rows)
                rows = rows[(unit.first_row + rows) % self.num_workers == self.worker]
                if rows.size == 0:
                    continue
            if self.shuffle:
                rows = np.random.default_rng([self.seed, self.epoch, c]).permutation(rows)
            plan.append((c, rows))
        return plan

    def _unit_rows(self, c: int) -> list:
        if self._rows is None or self._rows[0] != c:
            unit = self.catalog[c]
            try:
                rows = self.sources[unit.source].read_unit(unit.unit)
            except SampleError as e:
                rows = [e] * unit.num_rows  # every row of an unreadable unit is skipped and counted
            self._rows = (c, rows)
        return self._rows[1]

    def next_row(self) -> tuple[dict | SampleError, str, str]:
        """(row or the error standing for it, dataset name, 'path:unit:row' reference for logs)."""
        if self._plan is None:
            self._plan = self._epoch_plan()
        while self.unit_pos >= len(self._plan) or self.row_pos >= len(self._plan[self.unit_pos][1]):
            if self.unit_pos >= len(self._plan):
                self.epoch, self.unit_pos, self.row_pos = self.epoch + 1, 0, 0
                self._plan = self._epoch_plan()
                now = time.monotonic()
                if now - self._epoch_logged_at >= EPOCH_LOG_EVERY_S:  # a tiny dataset must not flood the log
                    log.info("worker %d starts epoch %d of [%s]", self.worker, self.epoch,
                             ", ".join(s.name for s in self.sources))
                    self._epoch_logged_at = now
            else:
                self.unit_pos, self.row_pos = self.unit_pos + 1, 0
        c, order = self._plan[self.unit_pos]
        r = int(order[self.row_pos])
        self.row_pos += 1
        unit = self.catalog[c]
        return self._unit_rows(c)[r], self.sources[unit.source].name, f"{unit.unit.path}:{unit.unit.index}:{r}"
