"""Exponential moving average of the trainable weights, kept in float32 beside (possibly sharded) parameters.

With FSDP2 the parameters are DTensors; the EMA copies them with the same placements, so each rank updates only
its own shard and torch.distributed.checkpoint saves / reshards the EMA like the model.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.tensor import DTensor


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if isinstance(t, DTensor) else t


UPDATES_KEY = "__ema_updates__"  # the warm-up's update count, saved with the shadows when warm-up is on


class EMA:
    """``ema = decay * ema + (1 - decay) * param`` after every optimizer step, for the given named parameters.

    With ``warmup`` the decay of update ``n`` is ``min(decay, (1 + n) / (10 + n))``: a run from random weights
    (the ShapesEdit demo) otherwise exports an average still dominated by its initialisation for the first
    ~1/(1 - decay) steps (0.998^250 = 0.61). BAGEL fine-tunes without it, from its released EMA weights."""

    def __init__(self, named_params: dict[str, nn.Parameter], decay: float, warmup: bool = False) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}; BAGEL uses 0.9999")
        self.decay = decay
        self.warmup = warmup
        self.updates = torch.zeros((), dtype=torch.int64)
        self._params = named_params
        self.shadow: dict[str, torch.Tensor] = {
            name: p.detach().to(torch.float32, copy=True) for name, p in named_params.items()
        }

    def current_decay(self) -> float:
        n = int(self.updates)
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self) -> None:
        shadows = [_local(self.shadow[name]) for name in self._params]
        params = [_local(p.detach()).float() for p in self._params.values()]
        if shadows:
            torch._foreach_lerp_(shadows, params, 1.0 - self.current_decay())
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**self.shadow, UPDATES_KEY: self.updates} if self.warmup else dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise KeyError(f"EMA state lacks {len(missing)} parameter(s), e.g. {missing[:3]}; "
                           "was the checkpoint written with other freezing switches?")
        with torch.no_grad():
            for name, value in self.shadow.items():
                _local(value).copy_(_local(state[name]))
            if self.warmup and UPDATES_KEY in state:
                self.updates.copy_(state[UPDATES_KEY])
