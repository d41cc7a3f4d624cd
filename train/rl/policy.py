"""The Flow-GRPO policy of one group: its edit contexts, the batched guided velocity and the stochastic step.

One ``GroupPolicy`` serves the rollout (no gradient: sample the window steps, store their log-probs) and the update
(with gradient: the log-prob of the stored samples): the same plan, forward, guidance and step distribution, so on
the first update the importance ratio is exactly 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inference.contexts import GuidanceContexts
from modeling.bagel.model import Bagel
from modeling.diffusion.guidance import guided_velocity
from modeling.diffusion.sde import StepDistribution, gaussian_logprob, step_distribution


@dataclass(frozen=True)
class PolicySpec:
    sde_kind: str = "flow_sde"
    noise_level: float = 1.3
    cfg: bool = True  # guidance inside the policy (rollout and log-prob); False: the cond branch alone
    cfg_text_scale: float = 4.0
    cfg_img_scale: float = 2.0
    cfg_interval: tuple[float, float] = (0.0, 1.0)
    cfg_renorm_type: str = "global"
    cfg_renorm_min: float = 0.0


class GroupPolicy:
    def __init__(self, model: Bagel, contexts: GuidanceContexts, grid_hw: tuple[int, int], group: int,
                 spec: PolicySpec, timesteps: torch.Tensor):
        self.model, self.spec, self.timesteps = model, spec, timesteps
        branches = (contexts.branches(spec.cfg_text_scale, spec.cfg_img_scale) if spec.cfg
                    else {"cond": contexts.cond})
        self.names = list(branches)
        self.plan = model.plan_group_query(list(branches.values()), grid_hw, group)
        self.cond_plan = model.plan_group_query([contexts.cond], grid_hw, group) if len(branches) > 1 else self.plan

    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Guided velocity of the group's latents x [G, N, C] at time t -> [G, N, C] float32 (guidance per member,
        as a single edit computes it)."""
        lo, hi = self.spec.cfg_interval
        if len(self.names) == 1 or not lo < float(t) <= hi:
            return self.model.group_velocity(self.cond_plan, x, t)[0].float()
        out = dict(zip(self.names, self.model.group_velocity(self.plan, x, t).float()))  # name -> [G, N, C]
        s = self.spec
        return torch.stack([guided_velocity(out["cond"][g], out["cfg_text"][g] if "cfg_text" in out else None,
                                            out["cfg_img"][g] if "cfg_img" in out else None, s.cfg_text_scale,
                                            s.cfg_img_scale, s.cfg_renorm_type, s.cfg_renorm_min)
                            for g in range(x.shape[0])])

    def distribution(self, x: torch.Tensor, v: torch.Tensor, step: int) -> StepDistribution:
        """The Gaussian of step ``step`` from x [G, N, C] with velocity v."""
        t = self.timesteps
        return step_distribution(self.spec.sde_kind, x, v, t[step], t[step + 1], self.spec.noise_level, t[1])

    def step_distribution(self, x: torch.Tensor, step: int) -> StepDistribution:
        return self.distribution(x, self.velocity(x, self.timesteps[step]), step)

    def logprob(self, x: torch.Tensor, x_next: torch.Tensor, step: int) -> tuple[torch.Tensor, StepDistribution]:
        """log pi(x_next | x) per member [G] (per-element mean), differentiable through the velocity."""
        dist = self.step_distribution(x, step)
        return gaussian_logprob(x_next, dist), dist
