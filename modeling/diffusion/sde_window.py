"""Which denoising steps are stochastic: a window of consecutive SDE steps among the early (high-noise) steps.

Steps are numbered 0 .. num_steps - 1 (step i goes from timesteps[i] to timesteps[i + 1]); the window lies inside
``[range_start, range_end)``. Placements:

- ``fixed``: always starts at ``range_start``;
- ``random``: a start drawn per rollout (from the rollout's own generator, so the group shares it and a resumed
  run draws the same);
- ``sliding`` (MixGRPO's progressive window): starts at ``range_start`` and moves one step later every
  ``slide_every`` training iterations, back to ``range_start`` after the last position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PLACEMENTS = ("fixed", "random", "sliding")


@dataclass(frozen=True)
class WindowSpec:
    size: int  # SDE steps per rollout (0: none, a plain ODE rollout)
    placement: str = "random"
    range_start: int = 0
    range_end: int = 7  # exclusive; BAGEL ports: windows inside the first half of the steps
    slide_every: int = 25

    def validate(self, num_steps: int) -> None:
        if self.placement not in PLACEMENTS:
            raise ValueError(f"window placement {self.placement!r}: choose one of {PLACEMENTS}")
        if self.size < 0 or self.slide_every < 1:
            raise ValueError(f"window size must be >= 0 and slide_every >= 1 (got {self.size}, {self.slide_every})")
        if self.range_start < 0 or not self.range_start + self.size <= self.range_end <= num_steps - 1:
            raise ValueError(f"window of {self.size} steps in [{self.range_start}, {self.range_end}) does not fit "
                             f"steps 0..{num_steps - 2} (the last step, to the clean image, is never stochastic)")

    def steps(self, iteration: int, generator: torch.Generator | None = None) -> list[int]:
        """The window's step indexes for a rollout of training iteration ``iteration``."""
        if self.size == 0:
            return []
        positions = self.range_end - self.size - self.range_start + 1
        if self.placement == "fixed":
            start = self.range_start
        elif self.placement == "random":
            start = self.range_start + int(torch.randint(positions, (1,), generator=generator))
        else:
            start = self.range_start + (iteration // self.slide_every) % positions
        return list(range(start, start + self.size))
