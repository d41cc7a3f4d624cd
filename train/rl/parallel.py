"""How the RL policy is spread over ranks, applied from outside the model.

- ``lora``: every rank holds the whole model (frozen base in the compute dtype) and its float32 adapters; adapter
  gradients are summed over ranks once per optimizer step (``sync_replicated_grads``), as DDP would.
- ``full``: FSDP2 over the trainable generation expert: each decoder layer is a unit whose trainable parameters
  become float32 sharded masters (compute in ``param_dtype``) and whose frozen understanding expert stays a plain
  replicated tensor (``ignored_params``); trained modules outside the layers (the final gen norm, latent
  projections) are units of their own. Rollouts run inside ``gathered``: every unit is all-gathered once and kept,
  so the many small forwards of decoding and denoising issue no collectives (ranks may then do different amounts of
  work, e.g. CoTs of different lengths).
Activation checkpointing wraps each decoder layer in both modes (it only acts when gradients are recorded).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed._composable import checkpoint as apply_activation_checkpointing
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor


LAYERS = "language_model.model.layers"


def _outside_layer_units(model: nn.Module) -> list[nn.Module]:
    """Modules outside the decoder layers that directly own trainable parameters."""
    units = []
    for name, module in model.named_modules():
        if name.startswith(LAYERS):
            continue
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            units.append(module)
    return units


def shard_trainable(model: nn.Module, param_dtype: torch.dtype, reduce_dtype: torch.dtype,
                    device_type: str) -> list[FSDPModule]:
    """FSDP2 units over the trainable parameters (made float32 first), computing in ``param_dtype``; returns them."""
    mesh = init_device_mesh(device_type, (dist.get_world_size(),), mesh_dim_names=("dp_shard",))
    mp = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=reduce_dtype)
    units: list[FSDPModule] = []
    for module in [*model.get_submodule(LAYERS), *_outside_layer_units(model)]:
        trainable = [p for p in module.parameters() if p.requires_grad]
        if not trainable:
            continue
        for p in trainable:
            p.data = p.data.float()
        frozen = {p for p in module.parameters() if not p.requires_grad}
        # reshard_after_forward explicitly: each unit is its own FSDP root, whose default keeps it gathered
        units.append(fully_shard(module, mesh=mesh, mp_policy=mp, reshard_after_forward=True,
                                 ignored_params=frozen or None))
    return units


def checkpoint_layers(model: nn.Module) -> None:
    for layer in model.get_submodule(LAYERS):
        apply_activation_checkpointing(layer)


@contextmanager
def gathered(units: list[FSDPModule]) -> Iterator[None]:
    """All-gather every unit once and keep it gathered until the block ends (no collectives inside)."""
    for unit in units:
        unit.unshard()
        unit.set_reshard_after_forward(False, recurse=False)
    try:
        yield
    finally:
        for unit in units:
            unit.set_reshard_after_forward(True, recurse=False)
            unit.reshard()


def sync_replicated_grads(params: list[nn.Parameter], world_size: int) -> None:
    """Average the gradients of replicated (non-sharded) trainable parameters over ranks, one collective.
    A rank that trained nothing this step contributes zeros."""
    plain = [p for p in params if not isinstance(p, DTensor)]
    if world_size == 1 or not plain:
        return
    for p in plain:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in plain])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p in plain:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n
