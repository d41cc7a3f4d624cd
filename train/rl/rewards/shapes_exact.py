"""The ShapesEdit exact reward: the synthetic world's judge reads the edited image back into a scene, no VLM.

Uses the evaluation's exact scorer (``inference.benchmark.scorers.shapes_exact``) on the request's ``reference``
(source scene, target scene, reference CoT) and ``cot_text``. The default dimension is ``cot_consistency`` (the
exact counterpart of CEC: does the edit carry out what the CoT states); ``overall`` or any other dimension of the
judge is a setting. All numeric dimensions are logged as components. A request without a reference is dropped.
"""

from __future__ import annotations

from typing import Sequence

from inference.benchmark.scorers.shapes_exact import ScoreEdit, exact_scores, load_score_edit
from train.rl.rewards.base import RewardRequest, RewardResult

DIMENSIONS: tuple[str, ...] = ("cot_consistency", "overall", "instruction", "preservation", "quality")


class ShapesExactReward:
    name = "shapes_exact"

    def __init__(self, dimension: str = "cot_consistency", score_edit: ScoreEdit | None = None):
        if dimension not in DIMENSIONS:
            raise ValueError(f"shapes_exact dimension {dimension!r} unknown; choose from {', '.join(DIMENSIONS)}")
        self.dimension = dimension
        self._score_edit = score_edit or load_score_edit()

    def _score_one(self, request: RewardRequest) -> RewardResult:
        if not request.reference:
            return RewardResult(None, error="shapes_exact: the request has no ShapesEdit reference")
        try:
            scores = exact_scores(self._score_edit, request.reference, request.edited_image, request.cot_text)
        except ValueError as e:  # a reference the judge cannot use
            return RewardResult(None, error=f"shapes_exact: {e}")
        components = {"overall": scores.overall, **scores.subscores}
        return RewardResult(components[self.dimension], components)

    def __call__(self, requests: Sequence[RewardRequest]) -> list[RewardResult]:
        return [self._score_one(r) for r in requests]
