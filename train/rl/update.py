"""The GRPO update of one iteration: PPO-clip over the stored SDE window steps of every kept group.

Local groups are split into ``updates_per_step`` chunks, each closed by one optimizer step (the first is on-policy:
ratio exactly 1; later ones are slightly off-policy, which the clip bounds), repeated ``inner_epochs`` times. Before
a group is trained its contexts are rebuilt with the current weights (the source image's VAE tokens pass through the
generation expert). Each window step is one forward and one backward over the whole group. The loss is the mean
over all (scored member, window step) terms of the chunk on all ranks.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from inference.inferencer import BagelInferencer
from modeling.diffusion.sde import gaussian_kl
from train.common.distributed import all_reduce_sum
from train.common.ema import EMA
from train.common.grads import clip_grad_norm
from train.common.nan_guard import NanGuard
from train.rl.advantages import Advantages
from train.rl.loss import ppo_clip_loss
from train.rl.parallel import sync_replicated_grads
from train.rl.policy import GroupPolicy
from train.rl.rollout import GroupRollout, RolloutSettings, build_contexts

ReferenceFn = Callable[[], AbstractContextManager]  # enters a state where the model computes the KL reference


@dataclass(frozen=True)
class UpdateSettings:
    clip_low: float = 1e-5
    clip_high: float = 1e-5
    kl_beta: float = 0.0
    inner_epochs: int = 1
    updates_per_step: int = 1
    grad_clip: float = 1.0


@dataclass
class UpdateStats:
    losses: list[float] = field(default_factory=list)  # global loss per optimizer step
    grad_norms: list[float] = field(default_factory=list)
    skipped: int = 0  # optimizer steps the NaN guard skipped
    terms: float = 0.0  # (member, window step) terms trained, all ranks
    ratio_sum: float = 0.0
    ratio_min: float = float("inf")
    ratio_max: float = float("-inf")
    clipped: float = 0.0
    kl_sum: float = 0.0
    on_policy_ratio_dev: float = 0.0  # max |ratio - 1| before the iteration's first optimizer step
    on_policy_kl_max: float = 0.0  # max KL to the reference then (0 on the first iteration: the reference)

    def summary(self) -> dict[str, float]:
        n = max(self.terms, 1.0)
        return {"loss": float(np.mean(self.losses)) if self.losses else float("nan"),
                "grad_norm": float(np.mean(self.grad_norms)) if self.grad_norms else float("nan"),
                "ratio/mean": self.ratio_sum / n, "ratio/min": self.ratio_min, "ratio/max": self.ratio_max,
                "ratio/on_policy_max_dev": self.on_policy_ratio_dev, "clip_fraction": self.clipped / n,
                "kl": self.kl_sum / n, "kl/on_policy_max": self.on_policy_kl_max,
                "optimizer_steps": float(len(self.losses)), "skipped_steps": float(self.skipped)}


def _all_reduce_max(values: list[float], device: torch.device) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


class GrpoUpdater:
    def __init__(self, inferencer: BagelInferencer, rollout: RolloutSettings, settings: UpdateSettings,
                 optimizer: torch.optim.Optimizer, ema: EMA | None, guard: NanGuard, device: torch.device,
                 world_size: int, sharded: bool, reference: ReferenceFn | None = None):
        self.inferencer, self.rollout, self.settings = inferencer, rollout, settings
        self.optimizer, self.ema, self.guard = optimizer, ema, guard
        self.device, self.world, self.sharded, self.reference = device, world_size, sharded, reference
        self.params: list[nn.Parameter] = [p for g in optimizer.param_groups for p in g["params"]]
        if settings.kl_beta and reference is None:
            raise ValueError("kl_beta > 0 needs a reference policy")

    def _policy(self, rollout: GroupRollout) -> GroupPolicy:
        contexts = build_contexts(self.inferencer, rollout.prompt, self.rollout, rollout.seed, rollout.cot_text)
        return GroupPolicy(self.inferencer.model, contexts, rollout.grid_hw, self.rollout.group_size,
                           self.rollout.policy, self.rollout.timesteps(self.device))

    def _train_group(self, rollout: GroupRollout, advantages: torch.Tensor, mask: torch.Tensor, scale: float,
                     local: dict[str, float], on_policy: bool) -> None:
        """Backward of every window step of one group; ``scale`` turns the local sum into the global mean."""
        beta = self.settings.kl_beta
        reference_policy = None
        if beta:
            with self.reference(), torch.no_grad():
                reference_policy = self._policy(rollout)
        with torch.no_grad():
            policy = self._policy(rollout)
        adv, weight = advantages.to(self.device), mask.to(self.device).float()
        for w, step in enumerate(rollout.window):
            x, x_next = rollout.states[w], rollout.next_states[w]
            reference_mean = None
            if reference_policy is not None:
                with self.reference(), torch.no_grad():
                    reference_mean = reference_policy.step_distribution(x, step).mean
            logp, step_dist = policy.logprob(x, x_next, step)
            kl = gaussian_kl(step_dist, reference_mean) if reference_mean is not None else None
            terms = ppo_clip_loss(logp, rollout.old_logprobs[w], adv, self.settings.clip_low,
                                  self.settings.clip_high, kl, beta)
            loss = (terms.per_sample * weight).sum() * scale
            loss.backward()
            used = weight > 0
            local["loss"] += float(loss.detach()) / scale
            local["terms"] += float(weight.sum())
            if used.any():
                ratio = terms.ratio[used]
                local["ratio_sum"] += float(ratio.sum())
                local["clipped"] += float(terms.clipped[used].sum())
                local["kl_sum"] += float(terms.kl[used].sum())
                local["ratio_max"] = max(local["ratio_max"], float(ratio.max()))
                local["neg_ratio_min"] = max(local["neg_ratio_min"], -float(ratio.min()))
                if on_policy:
                    local["dev"] = max(local["dev"], float((ratio - 1).abs().max()))
                    local["kl_max"] = max(local["kl_max"], float(terms.kl[used].max()))

    def update(self, rollouts: list[GroupRollout], adv: Advantages) -> UpdateStats:
        """Train on this rank's groups (``adv`` holds their rows, in the order of ``rollouts``)."""
        stats, s = UpdateStats(), self.settings
        kept = [i for i in range(len(rollouts)) if bool(adv.kept_groups[i])]
        on_policy = True
        for _ in range(s.inner_epochs):
            for chunk in np.array_split(np.array(kept, dtype=int), s.updates_per_step):
                chunk = chunk.tolist()
                window = len(rollouts[0].window)
                local_terms = float(sum(float(adv.mask[i].sum()) for i in chunk)) * window
                global_terms, = all_reduce_sum([local_terms], self.device)
                if global_terms == 0:
                    continue
                # FSDP2 units all-gather in every forward: every rank runs as many group passes (zero-weight extras)
                passes = int(_all_reduce_max([len(chunk)], self.device)[0]) if self.sharded else len(chunk)
                scale = self.world / global_terms
                local = {"loss": 0.0, "terms": 0.0, "ratio_sum": 0.0, "clipped": 0.0, "kl_sum": 0.0,
                         "ratio_max": float("-inf"), "neg_ratio_min": float("-inf"), "dev": 0.0, "kl_max": 0.0}
                for k in range(passes):
                    if k < len(chunk):
                        i = chunk[k]
                        self._train_group(rollouts[i], adv.values[i], adv.mask[i], scale, local, on_policy)
                    else:
                        filler = rollouts[chunk[0] if chunk else 0]
                        self._train_group(filler, torch.zeros(len(filler.images)), torch.zeros(len(filler.images)),
                                          scale, local, on_policy)
                self._optimizer_step(stats, local)
                on_policy = False
        return stats

    def _optimizer_step(self, stats: UpdateStats, local: dict[str, float]) -> None:
        sync_replicated_grads(self.params, self.world)
        grad_norm = clip_grad_norm(self.params, self.settings.grad_clip)
        loss_sum, terms, ratio_sum, clipped, kl_sum = all_reduce_sum(
            [local["loss"], local["terms"], local["ratio_sum"], local["clipped"], local["kl_sum"]], self.device)
        ratio_max, neg_ratio_min, dev, kl_max = _all_reduce_max(
            [local["ratio_max"], local["neg_ratio_min"], local["dev"], local["kl_max"]], self.device)
        loss = loss_sum / max(terms, 1.0)
        if self.guard.check(loss, grad_norm):
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update()
        else:
            stats.skipped += 1
        self.optimizer.zero_grad(set_to_none=True)
        stats.losses.append(loss)
        stats.grad_norms.append(grad_norm)
        stats.terms += terms
        stats.ratio_sum += ratio_sum
        stats.clipped += clipped
        stats.kl_sum += kl_sum
        stats.ratio_max = max(stats.ratio_max, ratio_max)
        stats.ratio_min = min(stats.ratio_min, -neg_ratio_min)
        stats.on_policy_ratio_dev = max(stats.on_policy_ratio_dev, dev)
        stats.on_policy_kl_max = max(stats.on_policy_kl_max, kl_max)
