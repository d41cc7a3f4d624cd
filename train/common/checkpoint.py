"""Resumable training checkpoints with torch.distributed.checkpoint (DCP).

Layout of one checkpoint (``<dir>/step_00001000/``):
    .metadata, __*_*.distcp   model, optimizer and EMA shards (DCP; loads on any number of ranks)
    rank_00000.pt ...         per-rank RNG states and data-stream state
    train_state.json          step, world size, skipped-step counters
    config.yaml               the run's full config
    MANIFEST.json             size and checksum (block sha256) of every file above (``checkpoint_manifest.py``)
    COMPLETE                  written last; a folder without it is ignored
Every rank writes into ``step_XXXXXXXX.tmp``; after a barrier the ranks hash what they wrote, rank 0 writes the
manifest, adds COMPLETE and renames the folder, so a run killed mid-save never leaves a folder that looks complete.
Only the newest ``keep_last`` checkpoints are kept.

Resume with ``resume_checkpoint(manager)``: it checks the newest complete checkpoint against its manifest; a damaged
one (truncated, bit-flipped or missing file, broken manifest) is renamed ``step_XXXXXXXX.damaged-<n>`` (nothing is
deleted; such a folder is never resumed from nor pruned), one line names the damaged file, and the next newest
intact checkpoint is used. Checkpoints written before manifests existed are loaded unverified, with a note.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from train.common.checkpoint_manifest import MANIFEST, verify_manifest, write_manifest
from train.common.distributed import barrier
from train.common.ema import EMA
from train.common.rng import rng_state, set_rng_state

log = logging.getLogger(__name__)

COMPLETE_MARKER = "COMPLETE"
_STEP_DIR = re.compile(r"^step_(\d{8})$")


@dataclass
class TrainState:
    """Everything besides tensors that a resumed run needs."""

    step: int
    extra: dict[str, Any]


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def list_complete_checkpoints(root: str) -> list[tuple[int, str]]:
    """(step, path) of complete checkpoints under ``root``, oldest first."""
    if not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        match = _STEP_DIR.match(name)
        path = os.path.join(root, name)
        if match and os.path.isfile(os.path.join(path, COMPLETE_MARKER)):
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(root: str) -> str | None:
    complete = list_complete_checkpoints(root)
    return complete[-1][1] if complete else None


class CheckpointManager:
    def __init__(self, root: str, keep_last: int, rank: int, world_size: int) -> None:
        if keep_last < 1:
            raise ValueError(f"checkpoint.keep_last must be >= 1, got {keep_last}")
        self.root = root
        self.keep_last = keep_last
        self.rank = rank
        self.world_size = world_size

    def save(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA | None,
             data_state: Any, extra: dict[str, Any], config_writer: Callable[[str], None]) -> str:
        final = os.path.join(self.root, step_dir_name(step))
        tmp = final + ".tmp"
        if self.rank == 0:
            os.makedirs(self.root, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
        barrier()
        tensors = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
        if ema is not None:
            tensors["ema"] = ema.state_dict()
        dcp.save(tensors, checkpoint_id=tmp)
        torch.save({"rng": rng_state(), "data": data_state}, os.path.join(tmp, f"rank_{self.rank:05d}.pt"))
        if self.rank == 0:
            with open(os.path.join(tmp, "train_state.json"), "w") as f:
                json.dump({"step": step, "world_size": self.world_size, "extra": extra}, f, indent=1)
            config_writer(os.path.join(tmp, "config.yaml"))
        barrier()
        write_manifest(tmp, self.rank, self.world_size, exclude={COMPLETE_MARKER})
        if self.rank == 0:
            with open(os.path.join(tmp, COMPLETE_MARKER), "w") as f:
                f.write(f"{step}\n")
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            self._prune()
        barrier()
        return final

    def load(self, path: str, model: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA | None,
             restore_data: bool = True) -> tuple[TrainState, Any]:
        """Restore model/optimizer/EMA/RNG in place; returns the train state and this rank's data state."""
        with open(os.path.join(path, "train_state.json")) as f:
            meta = json.load(f)
        saved_world = int(meta["world_size"])
        if restore_data and saved_world != self.world_size:
            raise RuntimeError(
                f"checkpoint {path} was written by {saved_world} ranks but this run has {self.world_size}: the "
                "per-rank data-stream and RNG states cannot be mapped. Resume on the same number of ranks, or set "
                "checkpoint.restart_data_stream=true to load weights/optimizer/EMA and restart the data stream.")
        tensors = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}
        if ema is not None:
            tensors["ema"] = ema.state_dict()
        dcp.load(tensors, checkpoint_id=path)
        set_model_state_dict(model, tensors["model"])
        set_optimizer_state_dict(model, optimizer, tensors["optim"])
        if ema is not None:
            ema.load_state_dict(tensors["ema"])
        data_state = None
        if restore_data:
            per_rank = torch.load(os.path.join(path, f"rank_{self.rank:05d}.pt"), weights_only=False)
            set_rng_state(per_rank["rng"])
            data_state = per_rank["data"]
        return TrainState(step=int(meta["step"]), extra=meta["extra"]), data_state

    def _prune(self) -> None:
        for _, path in list_complete_checkpoints(self.root)[:-self.keep_last]:
            shutil.rmtree(path, ignore_errors=True)
        for name in os.listdir(self.root):
            if name.endswith(".tmp") and _STEP_DIR.match(name[:-4]):
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)


def broadcast_object(obj: Any) -> Any:
    """Rank 0's value of ``obj`` on every rank (used to agree on which checkpoint to resume)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _unverified_problem(path: str) -> str | None:
    """For a checkpoint without manifest: what is visibly broken (unparsable state, missing files), else None."""
    try:
        with open(os.path.join(path, "train_state.json")) as f:
            meta = json.load(f)
        world = int(meta["world_size"])
        int(meta["step"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"train_state.json: unreadable ({type(e).__name__}: {e})"
    for name in [".metadata"] + [f"rank_{r:05d}.pt" for r in range(world)]:
        if not os.path.isfile(os.path.join(path, name)):
            return f"{name}: missing"
    return None


def check_checkpoint(path: str, rank: int, world_size: int) -> str | None:
    """None when the checkpoint is intact, else the damaged file and how (collective; same answer on all ranks)."""
    has_manifest = broadcast_object(os.path.exists(os.path.join(path, MANIFEST)))
    if has_manifest:
        return verify_manifest(path, rank, world_size)
    if rank == 0:
        log.warning("checkpoint %s has no %s (written before checkpoints were verified): loading it unverified",
                    path, MANIFEST)
    return broadcast_object(_unverified_problem(path) if rank == 0 else None)


def move_aside(path: str) -> str:
    """Renames a damaged checkpoint to ``<path>.damaged-<n>`` (first free n) and returns the new path."""
    n = 1
    while os.path.exists(f"{path}.damaged-{n}"):
        n += 1
    os.replace(path, f"{path}.damaged-{n}")
    return f"{path}.damaged-{n}"


def resume_checkpoint(manager: CheckpointManager) -> str | None:
    """The newest intact complete checkpoint under ``manager.root`` (None: start fresh); every rank calls it.

    Damaged checkpoints met on the way are moved aside (see the module docstring), each with one warning line.
    """
    while True:
        path = broadcast_object(latest_checkpoint(manager.root) if manager.rank == 0 else None)
        if path is None:
            return None
        problem = check_checkpoint(path, manager.rank, manager.world_size)
        if problem is None:
            return path
        if manager.rank == 0:
            moved = move_aside(path)
            log.warning("checkpoint %s is damaged: %s; moved to %s, resuming from the newest intact checkpoint",
                        path, problem, os.path.basename(moved))
        barrier()
