"""GEdit-Bench (HF ``stepfun-ai/GEdit-Bench``, parquet) -> ``OUT_ROOT/gedit_en`` and ``OUT_ROOT/gedit_cn``.

Columns used: ``key``, ``task_type`` (category), ``instruction``, ``instruction_language`` (en/cn),
``input_image`` (the processed input the official scripts edit; an HF Image struct with ``bytes``) and
``Intersection_exist`` (kept in ``reference.intersection``). One folder per language because GEdit reports the two
languages separately.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import pyarrow.parquet as pq
from PIL import Image

from data.image_io import load_image
from inference.benchmark.converters import ConvertStats
from inference.benchmark.schema import LANGUAGES, BenchSample, make_safe_id, write_benchmark

COLUMNS = ["key", "task_type", "instruction", "instruction_language", "input_image", "Intersection_exist"]


def _image_bytes(cell: object) -> bytes | None:
    if isinstance(cell, dict):
        cell = cell.get("bytes")
    return cell if isinstance(cell, (bytes, bytearray)) and cell else None


def _rows(parquet_files: Iterable[str | Path]) -> Iterator[dict]:
    for path in parquet_files:
        table = pq.ParquetFile(path)
        missing = [c for c in COLUMNS if c not in table.schema_arrow.names]
        if missing:
            raise ValueError(f"{path} lacks GEdit column(s) {missing}; is this stepfun-ai/GEdit-Bench?")
        for batch in table.iter_batches(batch_size=64, columns=COLUMNS):
            yield from batch.to_pylist()


def convert_gedit(parquet_files: Iterable[str | Path], out_root: str | Path) -> dict[str, ConvertStats]:
    """One pass over the parquet files per language, so images stream to disk instead of piling up in memory."""
    files = list(parquet_files)
    stats = {lang: ConvertStats() for lang in LANGUAGES}
    for lang in LANGUAGES:
        entries = _language_entries(files, lang, stats[lang])
        written = write_benchmark(Path(out_root) / f"gedit_{lang}", entries)
        stats[lang].written = written
    return stats


def _language_entries(files: list, lang: str, stats: ConvertStats) -> Iterator[tuple[BenchSample, Image.Image]]:
    seen: set[str] = set()
    for row in _rows(files):
        key = str(row["key"])
        if row["instruction_language"] != lang:
            if lang == LANGUAGES[0] and row["instruction_language"] not in LANGUAGES:
                stats.skipped.append(f"{key}: language {row['instruction_language']!r} is neither en nor cn")
            continue
        data = _image_bytes(row["input_image"])
        try:
            sample_id = make_safe_id(key)
            if sample_id in seen:
                raise ValueError("duplicate key")
            if not data:
                raise ValueError("no input_image bytes")
            image = load_image(data, name=f"input_image of {key}")
            sample = BenchSample(sample_id, f"images/{sample_id}.png", row["instruction"] or "",
                                 row["task_type"] or "", lang,
                                 {"intersection": bool(row["Intersection_exist"]), "orig_key": key})
        except ValueError as e:  # ImageLoadError included
            stats.skipped.append(f"{key}: {e}")
            continue
        seen.add(sample_id)
        yield sample, image
