"""Write records in the sample schema as parquet shards (small row groups, so readers stream them), atomically."""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from data.render import SampleError
from data.sample_schema import COLUMNS, IMAGE_COLUMNS
from data.sources.jsonl import JsonlSource

SCHEMA = pa.schema([(c, pa.binary() if c in IMAGE_COLUMNS else pa.string()) for c in COLUMNS])


def _cell(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in IMAGE_COLUMNS:
        if not isinstance(value, (bytes, bytearray)):
            raise ValueError(f"{column} must be encoded image bytes, got {type(value).__name__}")
        return bytes(value)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _write_atomic(table: pa.Table, path: str, row_group_size: int) -> None:
    tmp = f"{path}.tmp"
    pq.write_table(table, tmp, row_group_size=row_group_size)
    os.replace(tmp, path)


def write_parquet_shards(rows: Iterable[dict], out_dir: str, rows_per_shard: int = 1024, row_group_size: int = 64,
                         prefix: str = "shard") -> list[str]:
    """Writes ``prefix-00000.parquet``... with at most ``rows_per_shard`` rows each; returns the shard paths.

    Non-string text cells (a MetaCoT dict, a conversation list) are stored as JSON; unknown columns are an error.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths: list[str] = []
    buffer: list[dict] = []

    def flush() -> None:
        path = os.path.join(out_dir, f"{prefix}-{len(paths):05d}.parquet")
        columns = {c: [_cell(c, row.get(c)) for row in buffer] for c in COLUMNS}
        _write_atomic(pa.table(columns, schema=SCHEMA), path, row_group_size)
        paths.append(path)
        buffer.clear()

    for row in rows:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"record {row.get('id')!r} has columns {sorted(unknown)} outside data/sample_schema.py")
        buffer.append(row)
        if len(buffer) == rows_per_shard:
            flush()
    if buffer:
        flush()
    return paths


def jsonl_to_parquet(jsonl_paths: list[str], out_dir: str, image_root: str | None = None,
                     rows_per_shard: int = 1024, row_group_size: int = 64) -> tuple[list[str], dict[str, int]]:
    """Converts JSONL records (image paths resolved to bytes) into shards; unreadable records are skipped.

    Returns the shard paths and the skip counts per reason.
    """
    source = JsonlSource("convert", jsonl_paths, image_root=image_root)
    skipped: dict[str, int] = {}

    def records() -> Iterable[dict]:
        for unit in source.list_units():
            for row in source.read_unit(unit):
                if isinstance(row, SampleError):
                    skipped[row.reason] = skipped.get(row.reason, 0) + 1
                    continue
                yield {c: row.get(c) for c in COLUMNS if c in row}

    return write_parquet_shards(records(), out_dir, rows_per_shard, row_group_size), skipped
