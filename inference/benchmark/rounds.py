"""Reflection rounds in evaluations: the generation stage keeps every round, the scoring stage scores each.

An editor whose result has ``rounds`` (``inference/reflection.py``: ``--editor-factory
inference.reflection:ReflectingEditor.from_pretrained``) gets each round's image written to
``rounds/<id>.round<k>.png`` and its record (instruction, verdict, outcome, timings) to ``gen/<id>.json`` under
``reflection``. Scoring adds to the final image's score record:

- ``round_<k>`` for k = 1..max_rounds: the overall score of the image the loop held after k rounds (a loop that
  stopped earlier keeps its last image, so each round's mean is over the same samples);
- ``verdict_accuracy``, for scorers that know exact success (the exact ShapesEdit judge's ``is_success``): the share
  of the sample's verdicts that are right, i.e. 'success' for an image that is exactly the target and 'refine' for
  any other. ShapesEdit's benchmark has no impossible instruction, so 'failed' and unparsable verdicts are wrong.

The report averages them per category and overall like any sub-score.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from inference.benchmark.files import atomic_write_png
from inference.benchmark.layout import RunLayout
from inference.benchmark.schema import BenchSample
from inference.benchmark.scorers.base import Scorer


def save_rounds(layout: RunLayout, sample_id: str, result: Any) -> dict | None:
    """Writes each round's image; returns the record for gen/<id>.json (None for an editor without rounds)."""
    rounds = getattr(result, "rounds", None)
    if not rounds:
        return None
    paths = []
    for r in rounds:
        path = layout.round_image(sample_id, r.round)
        atomic_write_png(path, r.image.convert("RGB"))
        paths.append(str(path.relative_to(layout.root)))
    return result.to_record(paths)


def round_scores(scorer: Scorer, sample: BenchSample, source: Image.Image, reflection: dict,
                 layout: RunLayout) -> dict[str, float]:
    """``round_<k>`` and ``verdict_accuracy`` of one sample (see the module docstring)."""
    overall, right = [], []
    is_success = getattr(scorer, "is_success", None)
    for entry in reflection["rounds"]:
        with Image.open(layout.root / entry["image"]) as im:
            image = im.convert("RGB")
        record = scorer.score(sample, source, image, entry.get("think_text"))
        if not record.ok:
            return {}  # a round the judge could not score: no per-round figures rather than partial ones
        overall.append(record.overall)
        if is_success is not None:
            right.append(entry["outcome"] == ("success" if is_success(record) else "refine"))
    scores = {f"round_{k}": overall[min(k, len(overall)) - 1]
              for k in range(1, max(reflection.get("max_rounds", 0), len(overall)) + 1)}
    if right:
        scores["verdict_accuracy"] = sum(right) / len(right)
    return scores
