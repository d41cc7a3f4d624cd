"""Apply FSDP2, activation checkpointing and optional per-block compile to a model from outside it.

As in torchtitan's ``parallelize.py``: the model class knows nothing of parallelism. Each repeated block (decoder
layer, ViT block) becomes one FSDP2 unit; the root unit holds the rest (embeddings, heads, connectors). Compute runs
in ``param_dtype`` (bf16) while the sharded master weights, optimizer states and gradient reductions stay float32.
Activation checkpointing is applied in place (``torch.distributed._composable.checkpoint``), so parameter names and
checkpoint keys are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.distributed._composable import checkpoint as apply_activation_checkpointing
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ParallelPlan:
    block_lists: tuple[str, ...]          # dotted paths of the nn.ModuleLists whose items become FSDP units
    param_dtype: str = "bfloat16"         # compute dtype of unsharded parameters
    reduce_dtype: str = "float32"         # gradient reduce-scatter dtype
    activation_checkpointing: bool = False
    ac_every: int = 1                     # checkpoint every k-th block (1 = all)
    compile_blocks: bool = False
    shard_group_size: int = 0             # 0: shard over all ranks; k: HSDP, shard within groups of k, replicate across
    forward_methods: tuple[str, ...] = ("forward_train",)


def build_mesh(device_type: str, world_size: int, shard_group_size: int) -> DeviceMesh:
    """1-D mesh (plain FSDP) or 2-D (replicate, shard) mesh for hybrid sharding like BAGEL's HYBRID_SHARD."""
    if shard_group_size <= 0 or shard_group_size >= world_size:
        return init_device_mesh(device_type, (world_size,), mesh_dim_names=("dp_shard",))
    if world_size % shard_group_size:
        raise ValueError(f"parallel.shard_group_size={shard_group_size} must divide the world size {world_size}")
    return init_device_mesh(device_type, (world_size // shard_group_size, shard_group_size),
                            mesh_dim_names=("dp_replicate", "dp_shard"))


def get_submodule_list(model: nn.Module, path: str) -> nn.ModuleList:
    blocks = model.get_submodule(path)
    if not isinstance(blocks, nn.ModuleList):
        raise TypeError(f"{path!r} is a {type(blocks).__name__}, expected an nn.ModuleList of blocks")
    return blocks


def parallelize(model: nn.Module, plan: ParallelPlan, mesh: DeviceMesh) -> nn.Module:
    """Shard ``model`` in place (per block, then root); returns the same module object."""
    mp = MixedPrecisionPolicy(param_dtype=DTYPES[plan.param_dtype], reduce_dtype=DTYPES[plan.reduce_dtype])
    for path in plan.block_lists:
        blocks = get_submodule_list(model, path)
        for index, block in enumerate(blocks):
            if plan.activation_checkpointing and index % plan.ac_every == 0:
                apply_activation_checkpointing(block)
            if plan.compile_blocks:
                block.compile()
            # The last block's parameters are needed again right away by backward: keep them gathered.
            fully_shard(block, mesh=mesh, mp_policy=mp, reshard_after_forward=index < len(blocks) - 1)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    if hasattr(model, "set_reduce_scatter_unused_params"):
        # A parameter unused on one rank (e.g. the generation expert when its batch has no image target) still
        # joins the gradient reduce-scatter with zeros, so all ranks issue the same collectives.
        model.set_reduce_scatter_unused_params(True)
    for name in plan.forward_methods:
        if hasattr(model, name):
            register_fsdp_forward_method(model, name)
    return model
