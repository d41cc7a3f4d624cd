"""The packed-batch dataset a trainer iterates on each rank, and the data state it checkpoints.

Every data worker of the run has a *logical* id ``rank * num_workers + l``; logical worker ``l`` of a rank owns a
fixed share of every source (see ``data/sources/stream.py``). A DataLoader returns the batches of its workers in
turn, so batch ``i`` of a rank comes from logical worker ``i mod num_workers``. On resume after ``k`` batches the
loader's worker ``j`` plays logical worker ``(j + k) mod num_workers``, restored from the last state that worker
attached to a batch the trainer consumed; the resumed stream equals the uninterrupted one batch for batch.

Trainer usage::

    tracker = DataStateTracker(saved_state)          # None for a fresh run
    dataset = PackedMixDataset(mix, tokenizer, special_ids, rank, world_size, num_workers, tracker.state_dict())
    loader = make_loader(dataset)
    for batch in loader:
        tracker.update(batch)                        # pops batch['data_state']
        ...; checkpoint {'data_state': tracker.state_dict(), ...}
"""

from __future__ import annotations

import copy
from typing import Any, Iterator

import torch

from data.mix_config import MixConfig
from data.mix_stream import MixWorkerStream
from data.packing import SpecialTokens
from data.skip_counters import merge_counts


class DataStateTracker:
    def __init__(self, state: dict | None = None) -> None:
        state = state or {}
        self.batches_consumed = int(state.get("batches_consumed", 0))
        self.num_workers = state.get("num_workers")
        self.world_size = state.get("world_size")
        self.workers: dict[int, dict] = {int(k): v for k, v in state.get("workers", {}).items()}

    def update(self, batch: dict) -> None:
        """Records the data state a consumed batch carries (and removes it from the batch)."""
        state = batch.pop("data_state")
        self.num_workers = state["num_workers"]
        self.world_size = state["world_size"]
        self.workers[state["logical_worker"]] = state["stream"]
        self.batches_consumed += 1

    def state_dict(self) -> dict:
        return {"batches_consumed": self.batches_consumed, "num_workers": self.num_workers,
                "world_size": self.world_size, "workers": copy.deepcopy(self.workers)}

    def skip_counts(self) -> dict[str, dict[str, int]]:
        return merge_counts([w["counters"] for w in self.workers.values()])


class PackedMixDataset(torch.utils.data.IterableDataset):
    def __init__(self, mix: MixConfig, tokenizer: Any, special_tokens: dict | SpecialTokens, rank: int = 0,
                 world_size: int = 1, num_workers: int = 0, data_state: dict | None = None) -> None:
        super().__init__()
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.mix = mix
        self.tokenizer = tokenizer
        self.special = (special_tokens if isinstance(special_tokens, SpecialTokens)
                        else SpecialTokens.from_dict(special_tokens))
        self.rank, self.world_size = rank, world_size
        self.num_workers = num_workers  # loader processes; 0 = in the main process, which acts as one worker
        self.loader_workers = max(1, num_workers)
        self.resume = DataStateTracker(data_state)
        if self.resume.num_workers not in (None, self.loader_workers):
            raise ValueError(f"the data state was saved with {self.resume.num_workers} loader workers per rank; "
                             f"resume with num_workers={self.resume.num_workers} (got {num_workers})")
        if self.resume.world_size not in (None, world_size):
            raise ValueError(f"the data state was saved by a run of world size {self.resume.world_size}, not "
                             f"{world_size}; the split of the data differs, so it cannot resume exactly")

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        physical = info.id if info is not None else 0
        if info is not None and info.num_workers != self.loader_workers:
            raise ValueError(f"dataset built for {self.loader_workers} workers but the loader has {info.num_workers}")
        logical = (physical + self.resume.batches_consumed) % self.loader_workers
        stream = MixWorkerStream(self.mix, self.tokenizer, self.special,
                                 worker=self.rank * self.loader_workers + logical,
                                 num_workers=self.world_size * self.loader_workers,
                                 state=self.resume.workers.get(logical))
        for batch in stream:
            batch["data_state"] = {"logical_worker": logical, "num_workers": self.loader_workers,
                                   "world_size": self.world_size, "stream": batch.pop("data_state")}
            yield batch


def make_loader(dataset: PackedMixDataset, prefetch_factor: int = 2) -> torch.utils.data.DataLoader:
    """A loader yielding one packed batch per step, workers in strict turn (what the resume logic relies on)."""
    workers = dataset.num_workers
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers, in_order=True,
                                       prefetch_factor=prefetch_factor if workers else None)
