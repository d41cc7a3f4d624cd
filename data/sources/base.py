"""What every source offers: a list of read units (a parquet row group, a block of JSONL lines) and a reader.

A unit is the smallest thing read at once, so memory is bounded by one unit, never by a whole file. Rows come back
in the columns of ``data/sample_schema.py``; a row that cannot be read comes back as a ``SampleError`` in its place,
so row positions (and with them the resumable cursors) never shift.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Protocol

from data.render import SampleError


@dataclass(frozen=True)
class ReadUnit:
    path: str
    index: int  # row-group number (parquet) or block number (JSONL) within the file
    num_rows: int
    offset: int = 0  # byte offset of the block (JSONL only)


class Source(Protocol):
    name: str

    def list_units(self) -> list[ReadUnit]: ...

    def read_unit(self, unit: ReadUnit) -> list[dict | SampleError]: ...


def normalize_row(row: dict, columns: dict[str, str], kind: str | None) -> dict:
    """Row in our column names: renamed per ``columns`` ({ours: theirs}), ``kind`` filled in when the files lack it."""
    for ours, theirs in columns.items():
        row[ours] = row.pop(theirs, None)
    if kind is not None and not row.get("kind"):
        row["kind"] = kind
    return row


def expand_paths(patterns: list[str], suffixes: tuple[str, ...]) -> list[str]:
    """Files named by ``patterns`` (files, directories, globs), sorted so every worker sees the same order."""
    found: set[str] = set()
    for pattern in patterns:
        if os.path.isdir(pattern):
            found.update(os.path.join(root, f) for root, _, files in os.walk(pattern) for f in files
                         if f.endswith(suffixes))
        else:
            found.update(p for p in glob.glob(pattern) if p.endswith(suffixes) and os.path.isfile(p))
    if not found:
        raise FileNotFoundError(f"no {'/'.join(suffixes)} files at {patterns}; check the dataset path in the registry")
    return sorted(found)
