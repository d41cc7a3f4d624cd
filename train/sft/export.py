"""Export the EMA weights of a run to the official BAGEL folder layout (``ema.safetensors``, configs, tokenizer).

During training every rank takes part (the shards are gathered one tensor at a time, so rank 0 holds one
full copy in ``export_dtype`` and no more); offline, ``python -m train.sft.export CHECKPOINT OUT_DIR`` converts a
saved resumable checkpoint without launching a distributed job.
"""

from __future__ import annotations

import argparse
import os
import shutil
from typing import Callable

import torch
from torch import nn
from torch.distributed.tensor import DTensor

from train.common.distributed import barrier
from train.common.ema import EMA
from train.common.parallelize import DTYPES


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if isinstance(t, DTensor) else t


def gather_export_state(model: nn.Module, ema: EMA | None, dtype: torch.dtype, is_main: bool) -> dict[str, torch.Tensor]:
    """Full state dict (module names) with EMA values for trained parameters; filled on rank 0 only."""
    shadow = ema.shadow if ema is not None else {}
    state: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        full = _full(shadow.get(name, value)).detach()  # collective for sharded tensors: all ranks call it
        if is_main:
            state[name] = full.to(device="cpu", dtype=dtype if full.is_floating_point() else full.dtype)
    return state


def export_run(model: nn.Module, ema: EMA | None, out_dir: str, dtype: str, is_main: bool,
               writer: Callable[[dict[str, torch.Tensor], str], None]) -> None:
    """Gather and write atomically: into ``out_dir.tmp``, then renamed to ``out_dir``."""
    state = gather_export_state(model, ema, DTYPES[dtype], is_main)
    if is_main:
        tmp = out_dir.rstrip("/") + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        writer(state, tmp)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(tmp, out_dir)
    barrier()
