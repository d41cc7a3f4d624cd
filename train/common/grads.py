"""Gradient norm (and clipping) over plain and FSDP2-sharded parameters alike."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.tensor import DTensor


def clip_grad_norm(params: list[nn.Parameter], max_norm: float) -> float:
    """Total gradient norm of ``params`` (a collective when sharded); clips in place when ``max_norm > 0``."""
    grads = [p for p in params if p.grad is not None]
    if max_norm > 0:
        norm = torch.nn.utils.clip_grad_norm_(grads, max_norm, foreach=True)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in grads], foreach=True)
    if isinstance(norm, DTensor):
        norm = norm.full_tensor()
    return float(norm)
