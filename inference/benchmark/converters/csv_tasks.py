"""CSV benchmarks (the Meta-CoT 21-Tasks-Bench ships CSVs) -> common folder.

The official column names are not public yet, so columns are found by name from ``COLUMN_CANDIDATES`` (or given
explicitly). Without a category column, each CSV file is one category named after the file. Image paths are
relative to ``image_root`` (default: the CSV's folder); other columns are kept in ``reference``. ``rename`` maps
category names as found to the names written (the 21-Tasks-Bench's fixed spellings).
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from PIL import Image

from data.image_io import load_image
from inference.benchmark.converters import ConvertStats
from inference.benchmark.schema import LANGUAGES, BenchSample, make_safe_id, write_benchmark

COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "id": ("id", "key", "index", "idx", "sample_id"),
    "image": ("source_image", "image", "image_path", "input_image", "src_image", "image_name", "img"),
    "instruction": ("instruction", "edit_instruction", "prompt", "editing_instruction", "text"),
    "category": ("category", "task", "task_type", "edit_type", "type"),
    "language": ("language", "lang", "instruction_language"),
}
REQUIRED = ("image", "instruction")


def find_columns(header: list[str], explicit: dict[str, str] | None = None) -> dict[str, str]:
    lower = {h.strip().lower(): h for h in header}
    found = {}
    for role, names in COLUMN_CANDIDATES.items():
        if explicit and role in explicit:
            if explicit[role] not in header:
                raise ValueError(f"column {explicit[role]!r} (for {role}) not in CSV header {header}")
            found[role] = explicit[role]
            continue
        match = next((lower[n] for n in names if n in lower), None)
        if match is not None:
            found[role] = match
    missing = [r for r in REQUIRED if r not in found]
    if missing:
        raise ValueError(f"CSV header {header} has no column for {missing}; name it with --column ROLE=NAME")
    return found


def _rows(csv_path: Path, columns: dict[str, str] | None) -> Iterator[tuple[int, dict, dict[str, str]]]:
    """(line number, row, role -> column) of one CSV file."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = find_columns(list(reader.fieldnames or []), columns)
        for number, row in enumerate(reader, start=1):
            yield number, row, cols


def _category(csv_path: Path, row: dict, cols: dict[str, str]) -> str:
    return row[cols["category"]] if "category" in cols else csv_path.stem


def csv_categories(csv_files: Iterable[str | Path], columns: dict[str, str] | None = None) -> Counter:
    """Rows per category name as found (read before converting, to check them against a fixed list)."""
    return Counter(_category(path, row, cols) for path in map(Path, csv_files) for _, row, cols in _rows(path, columns))


def convert_csv_tasks(csv_files: Iterable[str | Path], out_dir: str | Path, image_root: str | Path | None = None,
                      columns: dict[str, str] | None = None, rename: dict[str, str] | None = None) -> ConvertStats:
    stats = ConvertStats()
    seen: set[str] = set()

    def entries() -> Iterator[tuple[BenchSample, Image.Image]]:
        for csv_path in map(Path, csv_files):
            root = Path(image_root) if image_root else csv_path.parent
            for number, row, cols in _rows(csv_path, columns):
                where = f"{csv_path.name}:{number}"
                try:
                    raw_id = row[cols["id"]] if "id" in cols else f"{csv_path.stem}_{number}"
                    sample_id = make_safe_id(raw_id)
                    if sample_id in seen:
                        sample_id = make_safe_id(f"{csv_path.stem}_{raw_id}")
                    if sample_id in seen:
                        raise ValueError(f"duplicate id {raw_id!r}")
                    category = _category(csv_path, row, cols)
                    category = (rename or {}).get(category, category)
                    language = (row.get(cols.get("language", ""), "") or "en").lower().replace("zh", "cn")
                    if language not in LANGUAGES:
                        raise ValueError(f"language {language!r} not in {LANGUAGES}")
                    image = load_image(root / row[cols["image"]])
                    used = set(cols.values())
                    reference = {k: v for k, v in row.items() if k not in used and k is not None}
                    sample = BenchSample(sample_id, f"images/{sample_id}.png", row[cols["instruction"]] or "",
                                         category, language, reference)
                except (KeyError, ValueError) as e:  # ImageLoadError is a ValueError
                    stats.skipped.append(f"{where}: {type(e).__name__}: {e}")
                    continue
                seen.add(sample_id)
                yield sample, image

    stats.written = write_benchmark(out_dir, entries())
    return stats
