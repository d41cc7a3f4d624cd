"""Parquet shards, read one row group at a time with pyarrow (images as encoded bytes columns)."""

from __future__ import annotations

import logging

import pyarrow.parquet as pq

from data.render import SampleError
from data.sample_schema import COLUMNS
from data.sources.base import ReadUnit, expand_paths, normalize_row

log = logging.getLogger(__name__)


class ParquetSource:
    def __init__(self, name: str, paths: list[str], columns: dict[str, str] | None = None,
                 kind: str | None = None) -> None:
        self.name = name
        self.paths = expand_paths(paths, (".parquet",))
        self.columns = dict(columns or {})
        self.kind = kind
        self.unreadable: list[str] = []  # shards whose footer could not be read when listing

    def list_units(self) -> list[ReadUnit]:
        units: list[ReadUnit] = []
        self.unreadable = []
        for path in self.paths:
            try:
                meta = pq.ParquetFile(path).metadata
            except Exception as e:  # a truncated / non-parquet file: skip the shard, keep the run going
                log.warning("dataset %s: unreadable shard %s skipped (%s)", self.name, path, e)
                self.unreadable.append(path)
                continue
            units.extend(ReadUnit(path, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups))
        return units

    def read_unit(self, unit: ReadUnit) -> list[dict | SampleError]:
        try:
            pf = pq.ParquetFile(unit.path)
            wanted = set(COLUMNS) - set(self.columns) | set(self.columns.values())
            rows = pf.read_row_group(unit.index, columns=[c for c in pf.schema_arrow.names if c in wanted]).to_pylist()
        except Exception as e:
            raise SampleError("unreadable_shard", f"{unit.path} row group {unit.index}: {e}") from e
        return [normalize_row(row, self.columns, self.kind) for row in rows]
