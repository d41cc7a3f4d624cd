"""ShapesEdit reflection samples: (source, possibly imperfect edit, instruction) with the verdict that is right.

Sample ``i`` of seed ``s`` starts from training sample (s, i) (same source, instruction and Meta-CoT as the edit
rows) and edits it with one variant of ``imperfect.py`` drawn from its own random stream (weights
``VARIANT_WEIGHTS``, among the variants that apply). The label comes from the exact judge on the rendered result:
``success`` iff it reads the result as exactly the target (instruction and preservation 10); otherwise ``refine``
with the problems and a refined instruction from ``corrections.py``, checked to turn the result into the target.

The world's only impossible instructions are ones naming a shape the picture does not have; ``IMPOSSIBLE_SHARE``
of the samples use one ("Remove the green star." with no green star), with the unchanged source as the faithful
result, a Meta-CoT that finds nothing to change, and the verdict ``failed``.

Rows (kind ``reflection``, columns of ``data/sample_schema.py``) are written to ``OUT/reflection/part-NNNNN.parquet``
with ``OUT/reflection/manifest.json`` (counts per variant and verdict).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from data.metacot import MetaCoT
from data.reflection import Reflection
from data.sample_schema import COLUMNS
from data.shapes_edit.corrections import correction_instruction, correction_ops, describe_problems
from data.shapes_edit.edits import cot_to_ops
from data.shapes_edit.export import (atomic_write_bytes, png_bytes, run_shard_jobs, training_sample,
                                     write_parquet_shard)
from data.shapes_edit.judge import score_edit
from data.shapes_edit.language import describe, join_list
from data.shapes_edit.recover import EXACT_MIN_PX
from data.shapes_edit.imperfect import VARIANTS, make_imperfect
from data.shapes_edit.render import render_paletted
from data.shapes_edit.scene import COLOURS, SHAPES, Scene

VARIANT_WEIGHTS: dict[str, float] = {"correct": 3.0, "nothing": 1.5, "wrong_object": 1.5, "wrong_attribute": 1.5,
                                     "partial": 1.0, "over_edit": 1.0, "wrong_angle": 1.0}
IMPOSSIBLE_SHARE = 0.05
SUCCESS_REASON = "The edit carries out the instruction ({task}) and keeps everything else."


def is_exact(scores: dict) -> bool:
    """The exact judge's truth for a verdict: the result is read as exactly the target scene."""
    return scores.get("instruction") == 10.0 and scores.get("preservation") == 10.0


@dataclass
class ReflectionSample:
    id: str
    category: str
    variant: str  # one of imperfect.VARIANTS, or "impossible"
    source: Scene
    result: Scene
    target: Scene | None  # None for an impossible instruction
    instruction: str
    cot: MetaCoT
    verdict: Reflection
    judge: dict | None  # the exact judge's scores of the result (None for an impossible instruction)


def impossible_instruction(source: Scene, rng: random.Random) -> tuple[str, MetaCoT, Reflection]:
    """An instruction naming a colour and form no shape of ``source`` has, its Meta-CoT and the 'failed' verdict."""
    present = {(s.colour, s.shape) for s in source.shapes}
    colour, form = rng.choice([(c, f) for c in COLOURS for f in SHAPES if (c, f) not in present])
    if rng.random() < 0.5:
        instruction, verb, meta, task = f"Remove the {colour} {form}.", "removed", "Deletion", "remove one shape"
    else:
        new = rng.choice([c for c in COLOURS if c != colour])
        instruction, verb, meta, task = (f"Make the {colour} {form} {new}.", "recoloured", "Replacement",
                                         "change one shape's colour")
    shapes = join_list([f"a {describe(s)}" for s in source.shapes])
    cot = MetaCoT(task, f"the {colour} {form}, which the picture does not have", "object recognition", [meta],
                  "Nothing matches, so nothing changes; keep every shape and the background.",
                  f"Looking for a {colour} {form}: the picture has {shapes}, and none of them is a {colour} {form}. "
                  "The instruction cannot be carried out, so the picture stays as it is.")
    verdict = Reflection("failed", f"There is no {colour} {form} in the picture, so it cannot be {verb}.")
    return instruction, cot, verdict


def judged_verdict(source: Scene, target: Scene, result: Scene, cot: MetaCoT, size: int,
                   correction: list | None) -> tuple[Reflection, dict]:
    """The verdict the exact judge's reading of the rendered result gives, and the judge's scores."""
    reference = {"source_scene": source.to_dict(), "target_scene": target.to_dict(), "cot": cot.to_dict()}
    scores = score_edit(reference, render_paletted(result, size))
    if is_exact(scores):
        return Reflection("success", SUCCESS_REASON.format(task=cot.task)), scores
    ops = correction if correction else correction_ops(result, target)
    return Reflection("refine", describe_problems(ops), correction_instruction(ops)), scores


def reflection_sample(seed: int, index: int, size: int = 256) -> ReflectionSample:
    base = training_sample(seed, index)
    rng = random.Random(f"shapes_edit/reflection/{seed}/{index}")
    sample_id = f"{base.id}-reflect"
    if rng.random() < IMPOSSIBLE_SHARE:
        instruction, cot, verdict = impossible_instruction(base.source, rng)
        return ReflectionSample(sample_id, "impossible", "impossible", base.source, base.source, None, instruction,
                                cot, verdict, None)
    ops, errors = cot_to_ops(base.cot, base.source)
    if errors:  # the reference CoT always executes; a failure is a bug in the world, not a sample to skip
        raise ValueError(f"{base.id}: the reference CoT does not execute: {errors}")
    made = {v: m for v in VARIANTS
            if (m := make_imperfect(v, base.source, base.target, ops, random.Random(f"{sample_id}/{v}"))) is not None}
    variant = rng.choices(list(made), weights=[VARIANT_WEIGHTS[v] for v in made])[0]
    imperfect = made[variant]
    verdict, scores = judged_verdict(base.source, base.target, imperfect.result, base.cot, size, imperfect.correction)
    return ReflectionSample(sample_id, base.category, variant, base.source, imperfect.result, base.target,
                            base.instruction, base.cot, verdict, scores)


def reflection_row(sample: ReflectionSample, size: int) -> dict:
    """The ``reflection`` row; the target image only for refine verdicts (the edit the refined instruction asks)."""
    meta = {"world": "shapes_edit", "image_size": size, "variant": sample.variant,
            "source_scene": sample.source.to_dict(), "result_scene": sample.result.to_dict(),
            "target_scene": None if sample.target is None else sample.target.to_dict(),
            "judge": None if sample.judge is None else {k: v for k, v in sample.judge.items()
                                                         if isinstance(v, (int, float))}}
    refine = sample.verdict.verdict == "refine"
    return {**dict.fromkeys(COLUMNS), "id": sample.id, "kind": "reflection",
            "source_image": png_bytes(render_paletted(sample.source, size)),
            "result_image": png_bytes(render_paletted(sample.result, size)),
            "target_image": png_bytes(render_paletted(sample.target, size)) if refine else None,
            "instruction": sample.instruction, "cot": json.dumps(sample.cot.to_dict()),
            "verdict": json.dumps(sample.verdict.to_dict()), "category": sample.category, "meta": json.dumps(meta)}


def _write_shard(job: tuple[str, int, int, int, int, int]) -> Counter:
    out_dir, shard, start, stop, seed, size = job
    rows, counts = [], Counter()
    for index in range(start, stop):
        try:
            sample = reflection_sample(seed, index, size)
        except RuntimeError:  # a category that found no scene for this stream (as in export.py); counted
            counts["skipped"] += 1
            continue
        rows.append(reflection_row(sample, size))
        counts[f"variant/{sample.variant}"] += 1
        counts[f"verdict/{sample.verdict.verdict}"] += 1
    write_parquet_shard(Path(out_dir) / f"part-{shard:05d}.parquet", rows)
    counts["samples"] += len(rows)
    return counts


def generate_reflection_dataset(out_dir: str | Path, num_samples: int, seed: int = 0, size: int = 256,
                                shard_size: int = 1000, workers: int = 2) -> dict:
    """Write ``num_samples`` reflection rows under ``out_dir/reflection``; returns the manifest (also written)."""
    if num_samples <= 0 or shard_size <= 0 or workers <= 0:
        raise ValueError("num_samples, shard_size and workers must be positive")
    if size < EXACT_MIN_PX:  # the labels are the exact judge's reading: below this it misreads its own renders
        raise ValueError(f"reflection samples need images of at least {EXACT_MIN_PX} px (the exact judge labels them); "
                         f"got {size}")
    folder = Path(out_dir) / "reflection"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(str(folder), i, start, min(start + shard_size, num_samples), seed, size)
            for i, start in enumerate(range(0, num_samples, shard_size))]
    began = time.perf_counter()
    results = run_shard_jobs(_write_shard, jobs, workers)
    counts = sum(results, Counter())
    manifest = {"world": "shapes_edit", "kind": "reflection", "seed": seed, "image_size": size, "shards": len(jobs),
                "samples": counts.pop("samples", 0), "skipped": counts.pop("skipped", 0), "counts": dict(counts),
                "seconds": round(time.perf_counter() - began, 2), "workers": workers}
    atomic_write_bytes(folder / "manifest.json", json.dumps(manifest, indent=2).encode())
    return manifest
