"""Export the EMA weights of a run to the official BAGEL folder layout (``ema.safetensors``, configs, tokenizer).

During training every rank takes part (the shards are gathered one tensor at a time, so rank 0 holds one
full copy in ``export_dtype`` and no more); offline, ``python -m train.sft.export CHECKPOINT OUT_DIR`` converts a
saved resumable checkpoint without launching a distributed job.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.tensor import DTensor

from inference.cli_args import HelpFormatter
from modeling.bagel.loader import export_bagel
from train.common.checkpoint import check_checkpoint
from train.common.distributed import barrier
from train.common.ema import EMA, UPDATES_KEY
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
    """Gather on all ranks; rank 0 writes with ``writer`` (export_bagel writes atomically: tmp folder + rename)."""
    state = gather_export_state(model, ema, DTYPES[dtype], is_main)
    if is_main:
        writer(state, out_dir)
    barrier()


def checkpoint_ema_state(checkpoint_dir: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Model weights with EMA values for trained parameters, read from a DCP checkpoint in this process alone."""
    metadata = dcp.FileSystemReader(checkpoint_dir).read_metadata().state_dict_metadata
    tensors = {key: torch.empty(meta.size, dtype=meta.properties.dtype) for key, meta in metadata.items()
               if key.startswith(("model.", "ema.")) and hasattr(meta, "size")}
    dcp.load(tensors, checkpoint_id=checkpoint_dir, no_dist=True)
    state = {key[len("model."):]: value for key, value in tensors.items() if key.startswith("model.")}
    for key, value in tensors.items():
        if key.startswith("ema.") and key != f"ema.{UPDATES_KEY}":  # the warm-up's counter is no weight
            state[key[len("ema."):]] = value
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def export_checkpoint(checkpoint_dir: str, out_dir: str, dtype: str = "bfloat16") -> None:
    """Offline export of a resumable checkpoint (its saved config names the base model folder)."""
    from train.common.config import load_config
    from train.sft.build import bundle_for_export
    from train.sft.config import SFTConfig

    cfg = load_config(SFTConfig, os.path.join(checkpoint_dir, "config.yaml"))
    bundle = bundle_for_export(cfg)
    state = checkpoint_ema_state(checkpoint_dir, DTYPES[dtype])
    export_bagel(bundle, out_dir, state_dict=state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a SFT checkpoint's EMA weights to the official layout.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("checkpoint", help="a checkpoint folder, e.g. runs/sft/checkpoints/step_00002000")
    parser.add_argument("out_dir", help="output folder (loads with load_bagel and the edit CLI)")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES))
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.checkpoint, "COMPLETE")):
        print(f"{args.checkpoint} is not a complete checkpoint (no COMPLETE marker); pick another step folder",
              file=sys.stderr)
        return 2
    problem = check_checkpoint(args.checkpoint, rank=0, world_size=1)
    if problem is not None:
        print(f"{args.checkpoint} is damaged: {problem}; export an older step folder", file=sys.stderr)
        return 2
    export_checkpoint(args.checkpoint, args.out_dir, args.dtype)
    print(f"exported {args.checkpoint} -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
