"""The reward contract of the RL trainer: requests in, one result per request out.

A reward never invents a score: a request whose judge call still fails after its retries comes back with
``score=None`` and the reason in ``error``; the trainer drops that sample from its group (counted and logged).
Scores are on the judges' 0-10 scale; GRPO normalises them per group, so only their order and spread matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from PIL import Image


@dataclass
class RewardRequest:
    sample_id: str  # "<prompt id>/<member index>": unique within a rollout batch
    source_image: Image.Image
    edited_image: Image.Image
    instruction: str
    cot_text: str | None = None  # the Meta-CoT the edit was conditioned on (model-written or from the dataset)
    reference: dict | None = None  # ShapesEdit ground truth (source_scene, target_scene, cot) for exact rewards


@dataclass
class RewardResult:
    score: float | None  # None: no score (judge failure after retries); the sample is dropped, never scored 0
    components: dict[str, float] = field(default_factory=dict)  # named parts, logged per reward
    error: str | None = None


class RewardFunction(Protocol):
    name: str

    def __call__(self, requests: Sequence[RewardRequest]) -> list[RewardResult]: ...
