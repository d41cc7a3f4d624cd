"""The ShapesEdit 'exact' judge: compares the edited image with the benchmark's known target scene, no VLM.

Wraps ``data.shapes_edit.judge.score_edit(reference, result_image, cot_text) -> dict`` (0-10 scores, ``overall``,
``explanation``), imported only when first used, so the other benchmarks do not need the ShapesEdit package.
``exact_scores`` is shared by the evaluation scorer and the RL reward (``train.rl.rewards.shapes_exact``). With the
model's CoT it adds ``box_iou`` (``data.shapes_edit.grounding``: its boxes against the true objects), and it tells
reflection scoring whether an image is exactly right (``is_success``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from PIL import Image

from inference.benchmark.schema import BenchSample
from inference.benchmark.scorers.base import ScoreRecord

ScoreEdit = Callable[[dict, Image.Image, "str | None"], dict]
JUDGE_MODULE = "data.shapes_edit.judge"


def load_score_edit() -> ScoreEdit:
    try:
        module = importlib.import_module(JUDGE_MODULE)
    except ImportError as e:
        raise ImportError(f"the exact judge needs {JUDGE_MODULE}.score_edit, which could not be imported ({e})") from e
    return module.score_edit


@dataclass
class ExactScores:
    overall: float
    subscores: dict[str, float]  # every other numeric dimension (instruction, preservation, cot_consistency, ...)
    explanation: str


def exact_scores(score_edit: ScoreEdit, reference: dict, edited: Image.Image, cot_text: str | None) -> ExactScores:
    """The judge's numeric scores; ValueError when its answer has no numeric ``overall``."""
    result = score_edit(reference, edited, cot_text)
    overall = result.get("overall")
    if not isinstance(overall, (int, float)) or isinstance(overall, bool):
        raise ValueError(f"score_edit returned no numeric 'overall' (keys: {sorted(result)})")
    subscores = {k: float(v) for k, v in result.items()
                 if k != "overall" and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return ExactScores(float(overall), subscores, str(result.get("explanation", "")))


class ShapesExactScorer:
    name = "exact"
    judge_model = JUDGE_MODULE

    def __init__(self, score_edit: ScoreEdit | None = None):
        self._score_edit = score_edit

    def score(self, sample: BenchSample, source: Image.Image, edited: Image.Image,
              cot_text: str | None) -> ScoreRecord:
        if self._score_edit is None:
            self._score_edit = load_score_edit()
        if not sample.reference:
            return ScoreRecord(sample.id, self.name, self.judge_model, "error",
                               error="sample has no reference scene; the exact judge needs ShapesEdit samples")
        try:
            scores = exact_scores(self._score_edit, sample.reference, edited, cot_text)
        except ValueError as e:
            return ScoreRecord(sample.id, self.name, self.judge_model, "error", error=str(e))
        subscores = dict(scores.subscores)
        if "cot" in sample.reference:
            box_iou = importlib.import_module("data.shapes_edit.grounding").cot_box_iou(sample.reference, cot_text)
            if box_iou is not None:
                subscores["box_iou"] = box_iou
        return ScoreRecord(sample.id, self.name, self.judge_model, "ok", overall=scores.overall,
                           subscores=subscores, explanation=scores.explanation, attempts=1)

    def is_success(self, record: ScoreRecord) -> bool:
        """The exact truth a reflection verdict is checked against: the image is read as exactly the target."""
        return importlib.import_module("data.shapes_edit.reflection_samples").is_exact(record.subscores)
