"""Metrics over a logging window: losses (merged over ranks and per dataset), tokens/s, MFU and memory.

``ce`` and ``mse`` are token means over every step of the window, and ``loss`` is built from exactly those numbers
(``ce_weight * ce + mse_weight * mse``), so the logged loss always equals its logged parts. ``grad_norm`` is the
logging step's own.
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from train.common.distributed import all_reduce_sum
from train.sft.loss import LossSums
from train.sft.step import StepResult


def _means(sums: list[float], prefix: str = "") -> dict[str, float]:
    ce, n_ce, mse, n_mse = sums
    return {**({f"{prefix}ce": ce / n_ce} if n_ce else {}), **({f"{prefix}mse": mse / n_mse} if n_mse else {})}


def gather_group_sums(sums: LossSums) -> LossSums:
    """Every rank's per-dataset sums merged, with totals over all groups (small dicts; only on log steps)."""
    gathered = [dict(sums.groups)]
    if dist.is_initialized() and dist.get_world_size() > 1:
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, dict(sums.groups))
    merged = LossSums()
    for groups in gathered:
        for name, values in groups.items():
            merged.add(LossSums(totals=list(values), groups={name: list(values)}))
    return merged


def weighted_loss(means: dict[str, float], ce_weight: float, mse_weight: float) -> float:
    """The objective from its logged parts; a part the window had no token for adds nothing (nan: neither had)."""
    parts = [w * means[k] for k, w in (("ce", ce_weight), ("mse", mse_weight)) if k in means]
    return sum(parts) if parts else float("nan")


class WindowMeter:
    def __init__(self, device: torch.device, world_size: int, peak_flops: float | None, ce_weight: float,
                 mse_weight: float) -> None:
        self.device, self.world_size, self.peak = device, world_size, peak_flops
        self.ce_weight, self.mse_weight = ce_weight, mse_weight
        self.reset()

    def reset(self) -> None:
        self.sums, self.tokens, self.flops, self.start = LossSums(), 0.0, 0.0, time.perf_counter()

    def add(self, result: StepResult, flops: float) -> None:
        self.sums.add(result.sums)
        self.tokens += result.tokens
        self.flops += flops

    def exclude(self, seconds: float) -> None:
        """Keep time spent outside training steps (checkpoints, exports, validation) out of the rates."""
        self.start += seconds

    def report(self, result: StepResult, lr: float, skipped_steps: int) -> dict[str, float]:
        """Scalars of the window (a collective: every rank calls it), then a fresh window starts."""
        elapsed = time.perf_counter() - self.start
        merged = gather_group_sums(self.sums)
        means = _means(merged.totals)
        scalars = {"loss": weighted_loss(means, self.ce_weight, self.mse_weight), **means,
                   "grad_norm": result.grad_norm, "lr": lr, "tokens_per_s": self.tokens / elapsed,
                   "skipped_steps": float(skipped_steps)}
        for name, values in sorted(merged.groups.items()):
            scalars.update(_means(values, prefix=f"{name}/"))
        if self.peak is not None and self.flops:
            (global_flops,) = all_reduce_sum([self.flops], self.device)
            scalars["mfu"] = global_flops / (elapsed * self.world_size * self.peak)
        if self.device.type == "cuda":
            scalars["peak_mem_gib"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        self.reset()
        return scalars
