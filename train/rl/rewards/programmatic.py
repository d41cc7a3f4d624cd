"""Closed-form rewards of the edited image alone (no judge): for checks, tests and smoke runs of the trainer.

- ``brightness``: 10 x the mean luminance (0 black .. 10 white);
- ``color``: 10 x (1 - distance of the mean RGB to ``color`` / the largest possible distance).
On the judges' 0-10 scale like every reward; deterministic and never failing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from train.rl.rewards.base import RewardRequest, RewardResult

TARGETS = ("brightness", "color")
MAX_RGB_DISTANCE = float(np.sqrt(3) * 255)


class ProgrammaticReward:
    name = "programmatic"

    def __init__(self, target: str = "brightness", color: Sequence[int] = (255, 0, 0)) -> None:
        if target not in TARGETS:
            raise ValueError(f"programmatic reward target {target!r}: choose one of {TARGETS}")
        if len(color) != 3 or not all(0 <= c <= 255 for c in color):
            raise ValueError(f"programmatic reward color must be three values in 0..255, got {list(color)}")
        self.target, self.color = target, np.asarray(color, dtype=np.float64)

    def score(self, request: RewardRequest) -> float:
        pixels = np.asarray(request.edited_image.convert("RGB"), dtype=np.float64)
        if self.target == "brightness":
            return float(10.0 * (pixels @ [0.299, 0.587, 0.114]).mean() / 255.0)
        distance = float(np.linalg.norm(pixels.reshape(-1, 3).mean(axis=0) - self.color))
        return 10.0 * (1.0 - distance / MAX_RGB_DISTANCE)

    def __call__(self, requests: Sequence[RewardRequest]) -> list[RewardResult]:
        results = []
        for request in requests:
            value = self.score(request)
            results.append(RewardResult(score=value, components={self.target: value}))
        return results
