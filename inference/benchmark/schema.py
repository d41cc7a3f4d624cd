"""The common benchmark folder: ``BENCH_DIR/samples.jsonl`` plus the source images it points to.

One JSON object per line::

    {"id": str, "source_image": "images/<id>.png", "instruction": str, "category": str,
     "language": "en" | "cn", "reference": {...optional}}

``source_image`` is relative to ``BENCH_DIR``; ``id`` is a file stem (letters, digits, ``._-``) because results are
saved as ``images/<id>.png``. An optional ``BENCH_DIR/judge_prompts.json`` holds benchmark-specific judge prompt
templates (ImgEdit's per-edit-type prompts; overrides of the built-in VIEScore prompts), keyed by scorer name.
Lines that break these rules are skipped and counted, never guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from PIL import Image

from data.image_io import load_image
from inference.benchmark.files import atomic_write_json, atomic_write_jsonl, atomic_write_png, read_jsonl

LANGUAGES: tuple[str, ...] = ("en", "cn")
SAMPLES_FILE = "samples.jsonl"
JUDGE_PROMPTS_FILE = "judge_prompts.json"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")


class BenchmarkFormatError(ValueError):
    """The benchmark folder is unusable as a whole (missing samples.jsonl, no valid sample)."""


@dataclass(frozen=True)
class BenchSample:
    id: str
    source_image: str
    instruction: str
    category: str
    language: str = "en"
    reference: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _SAFE_ID.match(self.id) or self.id.startswith("."):
            raise ValueError(f"id {self.id!r} is not a file stem; use letters, digits and ._- (see make_safe_id)")
        if not self.instruction.strip():
            raise ValueError(f"sample {self.id}: empty instruction")
        if not self.category.strip():
            raise ValueError(f"sample {self.id}: empty category")
        if self.language not in LANGUAGES:
            raise ValueError(f"sample {self.id}: language {self.language!r} must be one of {LANGUAGES}")
        if Path(self.source_image).is_absolute() or ".." in Path(self.source_image).parts:
            raise ValueError(f"sample {self.id}: source_image {self.source_image!r} must be relative to BENCH_DIR")

    @classmethod
    def from_dict(cls, row: dict) -> "BenchSample":
        missing = [k for k in ("id", "source_image", "instruction", "category") if not isinstance(row.get(k), str)]
        if missing:
            raise ValueError(f"missing or non-string field(s) {missing}")
        reference = row.get("reference") or {}
        if not isinstance(reference, dict):
            raise ValueError(f"sample {row['id']}: reference must be a JSON object")
        return cls(row["id"], row["source_image"], row["instruction"], row["category"], row.get("language", "en"),
                   reference)

    def to_dict(self) -> dict:
        return {"id": self.id, "source_image": self.source_image, "instruction": self.instruction,
                "category": self.category, "language": self.language, "reference": self.reference}


@dataclass
class LoadedBenchmark:
    bench_dir: Path
    samples: list[BenchSample]
    skipped: list[str]  # one "line N: reason" per corrupt line
    judge_prompts: dict

    def source_path(self, sample: BenchSample) -> Path:
        return self.bench_dir / sample.source_image

    def open_source(self, sample: BenchSample) -> Image.Image:
        """The source image as upright 8-bit RGB; ``ImageLoadError`` when it cannot be read."""
        return load_image(self.source_path(sample))


def make_safe_id(text: str) -> str:
    """A file-stem version of an arbitrary key (other characters become '_')."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    if not safe:
        raise ValueError(f"key {text!r} has no usable character for an id")
    return safe


def load_benchmark(bench_dir: str | Path) -> LoadedBenchmark:
    bench_dir = Path(bench_dir)
    path = bench_dir / SAMPLES_FILE
    if not path.is_file():
        raise BenchmarkFormatError(f"{path} not found; convert the benchmark first (scripts/download_bench.sh)")
    rows, bad_lines = read_jsonl(path)
    skipped = [f"line {n}: not a JSON object" for n in bad_lines]
    samples, seen = [], set()
    for number, row in enumerate(rows, start=1):
        try:
            sample = BenchSample.from_dict(row)
        except ValueError as e:
            skipped.append(f"record {number}: {e}")
            continue
        if sample.id in seen:
            skipped.append(f"record {number}: duplicate id {sample.id}")
            continue
        if not (bench_dir / sample.source_image).is_file():
            skipped.append(f"record {number}: source image {sample.source_image} not found")
            continue
        seen.add(sample.id)
        samples.append(sample)
    if not samples:
        raise BenchmarkFormatError(f"{path} holds no valid sample ({len(skipped)} skipped: {skipped[:3]})")
    prompts_path = bench_dir / JUDGE_PROMPTS_FILE
    judge_prompts = json.loads(prompts_path.read_text(encoding="utf-8")) if prompts_path.is_file() else {}
    return LoadedBenchmark(bench_dir, samples, skipped, judge_prompts)


def write_benchmark(bench_dir: str | Path, entries: Iterable[tuple[BenchSample, Image.Image]],
                    judge_prompts: dict | None = None) -> int:
    """Write the images and ``samples.jsonl`` of a benchmark folder; returns the number of samples written."""
    bench_dir = Path(bench_dir)
    rows = []
    for sample, image in entries:
        atomic_write_png(bench_dir / sample.source_image, image.convert("RGB"))
        rows.append(sample.to_dict())
    atomic_write_jsonl(bench_dir / SAMPLES_FILE, rows)
    if judge_prompts:
        atomic_write_json(bench_dir / JUDGE_PROMPTS_FILE, judge_prompts)
    return len(rows)
