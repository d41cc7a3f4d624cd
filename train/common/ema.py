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


class EMA:
    """``ema = decay * ema + (1 - decay) * param`` after every optimizer step, for the given named parameters."""

    def __init__(self, named_params: dict[str, nn.Parameter], decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}; BAGEL uses 0.9999")
        self.decay = decay
        self._params = named_params
        self.shadow: dict[str, torch.Tensor] = {
            name: p.detach().to(torch.float32, copy=True) for name, p in named_params.items()
        }

    @torch.no_grad()
    def update(self) -> None:
        shadows = [_local(self.shadow[name]) for name in self._params]
        params = [_local(p.detach()).float() for p in self._params.values()]
        if shadows:
            torch._foreach_lerp_(shadows, params, 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise KeyError(f"EMA state lacks {len(missing)} parameter(s), e.g. {missing[:3]}; "
                           "was the checkpoint written with other freezing switches?")
        with torch.no_grad():
            for name, value in self.shadow.items():
                _local(value).copy_(_local(state[name]))
