"""Degenerate and partial edits scored by the exact judge, so that a reader can tell what a number means.

Over a benchmark folder (``export.write_benchmark``), every sample is answered with images that do not carry out the
edit, and the judge's per-dimension means are reported per category and overall:

- degenerate (the judge must give them the bottom on every dimension): blank images (the three backgrounds, black,
  mid grey, red), uniform noise, the unedited source, the source blurred, another sample's target;
- partial (between the bottom and the ground truth): the target heavily blurred (right content, poor image), half of
  the edit (the first half of a multi-shape edit's operations, or only the removal half of a replace / move);
- the ground-truth target itself (10 on every dimension).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from data.metacot import MetaCoT
from data.shapes_edit.edits import Delete, Move, Replace, apply_ops, cot_to_ops
from data.shapes_edit.judge import score_edit
from data.shapes_edit.render import render
from data.shapes_edit.scene import BACKGROUNDS, COLOURS, Scene

DIMENSIONS: tuple[str, ...] = ("instruction", "preservation", "quality", "cot_consistency", "overall")
RAW_DIMENSIONS: tuple[str, ...] = ("preservation_raw", "quality_raw")


@dataclass
class BenchRecord:
    id: str
    category: str
    reference: dict
    source: Image.Image
    target: Image.Image


def load_records(bench_dir: str | Path) -> list[BenchRecord]:
    """The samples of a ShapesEdit benchmark folder with their source and target images."""
    bench = Path(bench_dir)
    path = bench / "samples.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; write a ShapesEdit benchmark first "
                                "(python -m scripts.shapes_edit.generate ... --bench-dir DIR)")
    records = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        reference = row["reference"]
        records.append(BenchRecord(row["id"], row["category"], reference,
                                   Image.open(bench / row["source_image"]).convert("RGB"),
                                   Image.open(bench / reference["target_image"]).convert("RGB")))
    return records


def _blank(rgb: tuple[int, int, int]) -> Callable[[BenchRecord, list[BenchRecord], int], Image.Image]:
    return lambda r, _all, _i: Image.new("RGB", r.source.size, rgb)


def _noise(r: BenchRecord, _all: list[BenchRecord], i: int) -> Image.Image:
    rng = np.random.default_rng(i)
    return Image.fromarray(rng.integers(0, 256, (r.source.height, r.source.width, 3), dtype=np.uint8))


def _blurred(image: Image.Image, fraction: float) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(image.width * fraction))


def _other_target(r: BenchRecord, records: list[BenchRecord], i: int) -> Image.Image:
    """The target of the next sample (same category where the benchmark has more than one per category)."""
    return records[(i + 1) % len(records)].target


def half_edit_scene(reference: dict) -> Scene | None:
    """The first half of the edit: the first ceil(n/2) of n >= 2 operations, or only the removal of the old shape of
    a single replace / move; None where an edit has no half (one addition, deletion or camera motion)."""
    source = Scene.from_dict(reference["source_scene"])
    ops, errors = cot_to_ops(MetaCoT.from_dict(reference["cot"]), source)
    if errors:
        raise ValueError(f"the reference CoT does not execute: {errors}")
    if len(ops) >= 2:
        return apply_ops(source, ops[:math.ceil(len(ops) / 2)])
    if isinstance(ops[0], (Replace, Move)):
        return apply_ops(source, [Delete(ops[0].target)])
    return None


def _half_done(r: BenchRecord, _all: list[BenchRecord], _i: int) -> Image.Image | None:
    scene = half_edit_scene(r.reference)
    return None if scene is None else render(scene, r.source.width)


Baseline = Callable[[BenchRecord, list[BenchRecord], int], "Image.Image | None"]
DEGENERATE: dict[str, Baseline] = {
    **{f"blank {name}": _blank(rgb) for name, rgb in BACKGROUNDS.items()},
    "blank black": _blank(COLOURS["black"]),
    "blank mid grey": _blank((128, 128, 128)),
    "blank red": _blank(COLOURS["red"]),
    "uniform noise": _noise,
    "source": lambda r, _all, _i: r.source,
    "source blurred": lambda r, _all, _i: _blurred(r.source, 1 / 64),
    "another sample's target": _other_target,
}
PARTIAL: dict[str, Baseline] = {
    "target heavily blurred": lambda r, _all, _i: _blurred(r.target, 1 / 32),
    "half of the edit": _half_done,
}
GROUND_TRUTH: dict[str, Baseline] = {"ground truth": lambda r, _all, _i: r.target}
BASELINES: dict[str, Baseline] = {**DEGENERATE, **PARTIAL, **GROUND_TRUTH}


def score_baselines(records: list[BenchRecord], names: list[str] | None = None) -> list[dict]:
    """One row per (baseline, sample): the judge's scores with the reference CoT (what a model that copies the
    reference plan would get); baselines without an image for a sample are left out."""
    rows = []
    for name in names or list(BASELINES):
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; choose among {', '.join(BASELINES)}")
        for i, record in enumerate(records):
            image = BASELINES[name](record, records, i)
            if image is None:
                continue
            result = score_edit(record.reference, image)
            rows.append({"baseline": name, "id": record.id, "category": record.category,
                         **{k: result[k] for k in (*DIMENSIONS, *RAW_DIMENSIONS) if k in result}})
    return rows


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 3)


def summarize(rows: list[dict]) -> dict:
    """{baseline: {"overall": {dim: mean}, "categories": {category: {dim: mean}}, "samples": n}}."""
    out: dict[str, dict] = {}
    for name in dict.fromkeys(r["baseline"] for r in rows):
        mine = [r for r in rows if r["baseline"] == name]
        dims = [d for d in (*DIMENSIONS, *RAW_DIMENSIONS) if d in mine[0]]
        categories = dict.fromkeys(r["category"] for r in mine)
        out[name] = {
            "samples": len(mine),
            "overall": {d: _mean([r[d] for r in mine]) for d in dims},
            "categories": {c: {d: _mean([r[d] for r in mine if r["category"] == c]) for d in dims}
                           for c in categories},
        }
    return out


def markdown(summary: dict) -> str:
    """A table of overall means (baselines x dimensions), then each baseline's worst category per dimension."""
    dims = [d for d in (*DIMENSIONS, *RAW_DIMENSIONS) if any(d in s["overall"] for s in summary.values())]
    lines = ["| baseline | samples | " + " | ".join(dims) + " |", "|---|---|" + "---|" * len(dims)]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['samples']} | " + " | ".join(f"{s['overall'].get(d, float('nan')):.2f}"
                                                              for d in dims) + " |")
    lines += ["", "Highest category mean per dimension (category in brackets):", "",
              "| baseline | " + " | ".join(DIMENSIONS) + " |", "|---|" + "---|" * len(DIMENSIONS)]
    for name, s in summary.items():
        cells = []
        for d in DIMENSIONS:
            category, value = max(((c, v[d]) for c, v in s["categories"].items()), key=lambda t: t[1])
            cells.append(f"{value:.2f} ({category})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

