"""JSONL records with images as paths relative to the JSONL file (or to ``image_root``), read in line blocks."""

from __future__ import annotations

import json
import logging
import os

from data.render import SampleError
from data.sample_schema import IMAGE_COLUMNS
from data.sources.base import ReadUnit, expand_paths, normalize_row

log = logging.getLogger(__name__)


class JsonlSource:
    def __init__(self, name: str, paths: list[str], image_root: str | None = None, block_rows: int = 256,
                 columns: dict[str, str] | None = None, kind: str | None = None) -> None:
        self.name = name
        self.columns = dict(columns or {})
        self.kind = kind
        self.paths = expand_paths(paths, (".jsonl",))
        self.image_root = image_root
        self.block_rows = block_rows
        self.unreadable: list[str] = []  # files that could not be read when listing

    def list_units(self) -> list[ReadUnit]:
        """One pass over each file to find the byte offset of every block of ``block_rows`` non-empty lines.

        A file that cannot be read (permissions, I/O error) is skipped whole and recorded in ``unreadable``.
        """
        units: list[ReadUnit] = []
        self.unreadable = []
        for path in self.paths:
            try:
                units.extend(self._list_file(path, len(units)))
            except OSError as e:
                log.warning("dataset %s: unreadable file %s skipped (%s)", self.name, path, e)
                self.unreadable.append(path)
        return units

    def _list_file(self, path: str, first_index: int) -> list[ReadUnit]:
        units: list[ReadUnit] = []
        with open(path, "rb") as f:
            offset, start, rows = 0, 0, 0
            for line in f:
                if line.strip():
                    if rows == 0:
                        start = offset
                    rows += 1
                    if rows == self.block_rows:
                        units.append(ReadUnit(path, first_index + len(units), rows, start))
                        rows = 0
                offset += len(line)
            if rows:
                units.append(ReadUnit(path, first_index + len(units), rows, start))
        return units

    def _resolve_images(self, record: dict, base_dir: str) -> dict:
        for column in IMAGE_COLUMNS:
            ref = record.get(column)
            if isinstance(ref, str) and ref:
                path = ref if os.path.isabs(ref) else os.path.join(base_dir, ref)
                try:
                    with open(path, "rb") as f:
                        record[column] = f.read()
                except OSError as e:
                    raise SampleError("missing_image_file", f"{column} {path}: {e.strerror}") from e
        return record

    def _parse(self, line: bytes, base_dir: str) -> dict | SampleError:
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                return SampleError("bad_json", "a JSONL line must be an object")
            return self._resolve_images(normalize_row(record, self.columns, self.kind), base_dir)
        except json.JSONDecodeError as e:
            return SampleError("bad_json", str(e))
        except SampleError as e:
            return e

    def read_unit(self, unit: ReadUnit) -> list[dict | SampleError]:
        base_dir = self.image_root or os.path.dirname(os.path.abspath(unit.path))
        rows: list[dict | SampleError] = []
        try:
            with open(unit.path, "rb") as f:
                f.seek(unit.offset)
                while len(rows) < unit.num_rows:
                    line = f.readline()
                    if not line:
                        raise SampleError("unreadable_shard", f"{unit.path} ended early (changed since listing?)")
                    if line.strip():
                        rows.append(self._parse(line, base_dir))
        except OSError as e:
            raise SampleError("unreadable_shard", f"{unit.path}: {e}") from e
        return rows
