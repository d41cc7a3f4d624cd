"""Scoring the groups of an iteration: an async reward (``submit``) scores a group while the next one is generated;
a plain reward scores every group at once after the last one (so it can batch its requests)."""

from __future__ import annotations

import time
from concurrent.futures import Future

import torch

from train.rl.prompts import EditPrompt
from train.rl.rewards.base import RewardFunction, RewardRequest, RewardResult


def group_requests(prompt: EditPrompt, cot_text: str | None, images: list, prefix: str) -> list[RewardRequest]:
    return [RewardRequest(sample_id=f"{prefix}/{g}", source_image=prompt.source_image, edited_image=image,
                          instruction=prompt.instruction, cot_text=cot_text, reference=prompt.reference)
            for g, image in enumerate(images)]


class GroupScorer:
    def __init__(self, reward: RewardFunction) -> None:
        self.reward = reward
        self.is_async = callable(getattr(reward, "submit", None))
        self._pending: list[tuple[list[RewardRequest], Future | None]] = []
        self.wait_s = 0.0  # time spent waiting for rewards after the last group was generated

    def add(self, requests: list[RewardRequest]) -> None:
        self._pending.append((requests, self.reward.submit(requests) if self.is_async else None))

    def collect(self) -> list[list[RewardResult]]:
        """Results per added group, in order; the pending list is emptied."""
        start, pending, self._pending = time.perf_counter(), self._pending, []
        if self.is_async:
            groups = [list(future.result()) for _, future in pending]
        else:
            flat = list(self.reward([r for requests, _ in pending for r in requests]))
            total = sum(len(requests) for requests, _ in pending)
            if len(flat) != total:
                raise RuntimeError(self._count_error(len(flat), total))
            groups, offset = [], 0
            for requests, _ in pending:
                groups.append(flat[offset:offset + len(requests)])
                offset += len(requests)
        for (requests, _), results in zip(pending, groups):
            if len(results) != len(requests):
                raise RuntimeError(self._count_error(len(results), len(requests)))
        self.wait_s = time.perf_counter() - start
        return groups

    def _count_error(self, got: int, wanted: int) -> str:
        return (f"reward {getattr(self.reward, 'name', '?')} returned {got} results for {wanted} requests; a reward "
                "must answer every request (score None for a failure)")


def reward_matrix(groups: list[list[RewardResult]]) -> torch.Tensor:
    """[groups, G] float32 scores, NaN where a sample was dropped (score None)."""
    return torch.tensor([[float("nan") if r.score is None else float(r.score) for r in g] for g in groups],
                        dtype=torch.float32)
