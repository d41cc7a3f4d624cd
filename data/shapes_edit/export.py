"""Write ShapesEdit as training shards (parquet, the columns of ``data/sample_schema.py``) and as a benchmark folder.

Training data: sample ``i`` of seed ``s`` is category ``i mod 21`` from the random stream ``train/s/i``, so a dataset
is the same whatever the number of worker processes (with a subset of categories: category ``i mod k`` of those k;
``drop_task_thinking`` writes the Meta-CoTs without Step 2, for the ablation). Each sample gives three rows with the same id and images:
``edit_cot`` (with the Meta-CoT JSON), ``edit`` (without it) and ``understanding`` (questions about the source
image), written to ``OUT/<kind>/part-NNNNN.parquet``.

Benchmark folder (the format the evaluation code reads): ``BENCH/samples.jsonl`` with one object per line
``{"id", "source_image": "images/<id>.png", "instruction", "category", "language": "en", "reference":
{"source_scene", "target_scene", "cot", "target_image": "images/<id>_target.png"}}``; its samples come from the
streams ``bench/s/...``, disjoint from training.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from data.sample_schema import COLUMNS
from data.shapes_edit.render import render_paletted
from data.shapes_edit.tasks import CATEGORIES, EditSample, make_edit_sample
from data.shapes_edit.understanding import make_conversation

CATEGORY_NAMES: tuple[str, ...] = tuple(CATEGORIES)
KINDS: tuple[str, ...] = ("edit_cot", "edit", "understanding")
SCHEMA = pa.schema([(name, pa.binary() if doc.startswith("bytes") else pa.string()) for name, doc in COLUMNS.items()])
ROW_GROUP_SIZE = 256
J = TypeVar("J")  # a shard job
R = TypeVar("R")  # what writing it returns
PNG_COMPRESS_LEVEL = 6  # paletted flat colours: a few KiB per 512 px image at this level, encoded in milliseconds


def png_bytes(image: Image.Image) -> bytes:
    """PNG bytes; the world's images are paletted ("P"), which readers turn into RGB with ``convert("RGB")``."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def training_sample(seed: int, index: int, categories: tuple[str, ...] = CATEGORY_NAMES) -> EditSample:
    category = categories[index % len(categories)]
    return make_edit_sample(category, f"train/{seed}/{index}", sample_id=f"shapes-s{seed}-{index:08d}")


def sample_rows(sample: EditSample, size: int) -> dict[str, dict]:
    """The edit_cot, edit and understanding rows of one sample (images encoded once, shared by the rows)."""
    source, target = png_bytes(render_paletted(sample.source, size)), png_bytes(render_paletted(sample.target, size))
    meta = json.dumps({"world": "shapes_edit", "image_size": size, "source_scene": sample.source.to_dict(),
                       "target_scene": sample.target.to_dict()})
    empty = dict.fromkeys(COLUMNS)
    edit = {**empty, "id": sample.id, "kind": "edit", "source_image": source, "target_image": target,
            "instruction": sample.instruction, "category": sample.category, "meta": meta}
    conversation = make_conversation(sample.source, sample.id)
    return {
        "edit_cot": {**edit, "kind": "edit_cot", "cot": json.dumps(sample.cot.to_dict())},
        "edit": edit,
        "understanding": {**empty, "id": sample.id, "kind": "understanding", "source_image": source,
                          "conversation": json.dumps(conversation), "category": "understanding", "meta": meta},
    }


@dataclass(frozen=True)
class ShardJob:
    out_dir: str
    shard: int
    start: int
    stop: int
    seed: int
    size: int
    categories: tuple[str, ...] = CATEGORY_NAMES
    drop_task_thinking: bool = False


def write_shard(job: ShardJob) -> dict[str, int]:
    """Generate samples [start, stop) and write one parquet file per kind; returns written / skipped counts."""
    rows: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    skipped = 0
    for index in range(job.start, job.stop):
        try:
            sample = training_sample(job.seed, index, job.categories)
            if job.drop_task_thinking:
                sample.cot = dataclasses.replace(sample.cot, task_thinking="")
        except RuntimeError:  # a category that found no scene for this stream; counted, never fatal
            skipped += 1
            continue
        for kind, row in sample_rows(sample, job.size).items():
            rows[kind].append(row)
    for kind in KINDS:
        write_parquet_shard(Path(job.out_dir) / kind / f"part-{job.shard:05d}.parquet", rows[kind])
    return {"samples": len(rows["edit"]), "skipped": skipped}


def write_parquet_shard(path: Path, rows: list[dict]) -> None:
    """Rows in the training schema as one parquet file, written under a temporary name and renamed into place."""
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp, row_group_size=ROW_GROUP_SIZE)
    os.replace(tmp, path)


def run_shard_jobs(write: Callable[[J], R], jobs: list[J], workers: int) -> list[R]:
    """``write`` over the shard jobs, in ``workers`` processes (in this one when 1)."""
    if workers == 1:
        return [write(job) for job in jobs]
    with Pool(workers) as pool:
        return list(pool.imap_unordered(write, jobs))


def generate_dataset(out_dir: str | Path, num_samples: int, seed: int = 0, size: int = 256, shard_size: int = 1000,
                     workers: int = 2, categories: tuple[str, ...] = CATEGORY_NAMES,
                     drop_task_thinking: bool = False) -> dict:
    """Write ``num_samples`` samples as parquet shards under ``out_dir``; returns the manifest (also written)."""
    if num_samples <= 0 or shard_size <= 0 or workers <= 0:
        raise ValueError("num_samples, shard_size and workers must be positive")
    unknown = sorted(set(categories) - set(CATEGORY_NAMES))
    if unknown or not categories:
        raise ValueError(f"unknown categories {unknown}; choose among {', '.join(CATEGORY_NAMES)}")
    out = Path(out_dir)
    for kind in KINDS:
        (out / kind).mkdir(parents=True, exist_ok=True)
    jobs = [ShardJob(str(out), i, start, min(start + shard_size, num_samples), seed, size, tuple(categories),
                     drop_task_thinking) for i, start in enumerate(range(0, num_samples, shard_size))]
    began = time.perf_counter()
    results = run_shard_jobs(write_shard, jobs, workers)
    manifest = {"world": "shapes_edit", "seed": seed, "image_size": size, "shards": len(jobs), "kinds": list(KINDS),
                "samples": sum(r["samples"] for r in results), "skipped": sum(r["skipped"] for r in results),
                "categories": list(categories), "drop_task_thinking": drop_task_thinking, "seconds": round(time.perf_counter() - began, 2),
                "workers": workers}
    atomic_write_bytes(out / "manifest.json", json.dumps(manifest, indent=2).encode())
    return manifest


def benchmark_samples(per_category: int, seed: int = 0) -> list[EditSample]:
    return [make_edit_sample(category, f"bench/{seed}/{i}", sample_id=f"{category}-{i:04d}")
            for category in CATEGORY_NAMES for i in range(per_category)]


def write_benchmark(bench_dir: str | Path, per_category: int, seed: int = 0, size: int = 256) -> int:
    """Write the benchmark folder (format in the module docstring); returns the number of samples."""
    if per_category <= 0:
        raise ValueError("per_category must be positive")
    bench = Path(bench_dir)
    (bench / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for sample in benchmark_samples(per_category, seed):
        source_rel, target_rel = f"images/{sample.id}.png", f"images/{sample.id}_target.png"
        atomic_write_bytes(bench / source_rel, png_bytes(render_paletted(sample.source, size)))
        atomic_write_bytes(bench / target_rel, png_bytes(render_paletted(sample.target, size)))
        reference = {"source_scene": sample.source.to_dict(), "target_scene": sample.target.to_dict(),
                     "cot": sample.cot.to_dict(), "target_image": target_rel}
        lines.append(json.dumps({"id": sample.id, "source_image": source_rel, "instruction": sample.instruction,
                                 "category": sample.category, "language": "en", "reference": reference}))
    atomic_write_bytes(bench / "samples.jsonl", ("\n".join(lines) + "\n").encode())
    return len(lines)
