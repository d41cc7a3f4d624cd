"""One data worker's endless stream of packed batches from a mix, with a state that resumes it exactly.

Per sample: draw a group by weight, take the group stream's next row, render it, and pack it. A batch is emitted
once it holds ``expected_num_tokens``; a sample that would push it past ``max_num_tokens`` starts the next batch.
The state attached to a batch is the worker's state at the point the next batch begins (for a carried-over sample:
just before its group draw), so restoring it replays the carried sample and everything after it identically.

No row is lost without a count. Per dataset and epoch, every row of every shard whose structure could be listed (a
readable parquet footer, a readable JSONL file) is either delivered once (over all data workers together) or counted
in ``counters`` under the reason it was skipped (a row of a row group that fails to read counts once, as
``unreadable_shard``). A shard that cannot be listed at all has no known row count: it is counted once, as a shard,
under ``unlistable_shard``. Empty shards and row groups have no rows and count nothing.

A stream in which nothing fits (every sample too long, or every row broken) stops with ``NoUsableSampleError``
after ``mix.max_consecutive_skips`` skipped rows in a row, its one-line message naming datasets, cap and sizes.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator

import numpy as np

from data.dataset_info import DatasetInfo
from data.mix_config import GroupConfig, MixConfig
from data.packing import BatchPacker, SpecialTokens
from data.render import SampleError, SampleRenderer
from data.segments import PackableSample
from data.skip_counters import UNLISTABLE_SHARD, SkipCounters, SkipStreak
from data.sources.base import Source
from data.sources.jsonl import JsonlSource
from data.sources.parquet import ParquetSource
from data.sources.stream import ShardedStream


def open_source(info: DatasetInfo) -> Source:
    """The reader of a registry entry (paths as given: ``parse_mix`` has resolved them)."""
    if info.format == "parquet":
        return ParquetSource(info.name, list(info.paths), columns=info.columns, kind=info.kind)
    return JsonlSource(info.name, list(info.paths), image_root=info.image_root, columns=info.columns, kind=info.kind)


class MixWorkerStream:
    def __init__(self, mix: MixConfig, tokenizer: Any, special: SpecialTokens, worker: int, num_workers: int,
                 state: dict | None = None) -> None:
        """``worker`` in 0..num_workers-1 indexes all data workers of the run (rank x loader workers)."""
        self.mix = mix
        self.worker = worker
        self.counters = SkipCounters()
        self.streak = SkipStreak(mix.max_consecutive_skips, mix.budget.max_num_tokens_per_sample,
                                 f"data worker {worker} of {num_workers}")
        self.streams = [self._open_group(g, worker, num_workers) for g in mix.groups]
        self.renderers = [SampleRenderer(tokenizer, g.vae_transform.build(), g.vit_transform.build(),
                                         g.think_system_prompt) for g in mix.groups]
        weights = np.array([g.weight for g in mix.groups])
        self.probabilities = weights / weights.sum()
        self.sampler_rng = np.random.default_rng([mix.seed, worker, 0])
        self.packer = BatchPacker(special, mix.packing, np.random.default_rng([mix.seed, worker, 1]))
        self.batches_emitted = 0
        if state is not None:
            self.load_state(state)

    def _open_group(self, group: GroupConfig, worker: int, num_workers: int) -> ShardedStream:
        sources = [open_source(group.infos[name]) for name in group.datasets]
        stream = ShardedStream(sources, list(group.datasets.values()), group.shuffle_seed, worker, num_workers,
                               group.shuffle)
        if worker == 0:  # listing happens on every worker; count unlistable shards once
            for source in sources:
                for path in getattr(source, "unreadable", []):
                    self.counters.add(source.name, UNLISTABLE_SHARD, "could not be listed", path)
        return stream

    def state(self) -> dict:
        return {
            "streams": [s.state() for s in self.streams],
            "sampler_rng": copy.deepcopy(self.sampler_rng.bit_generator.state),
            "packer_rng": copy.deepcopy(self.packer.rng.bit_generator.state),
            "counters": self.counters.state(),
            "batches_emitted": self.batches_emitted,
        }

    def load_state(self, state: dict) -> None:
        if len(state["streams"]) != len(self.streams):
            raise ValueError(f"data state has {len(state['streams'])} groups, the mix {len(self.streams)}; "
                             "resume with the mix the run started with")
        for stream, s in zip(self.streams, state["streams"]):
            stream.load_state(s)
        self.sampler_rng.bit_generator.state = copy.deepcopy(state["sampler_rng"])
        self.packer.rng.bit_generator.state = copy.deepcopy(state["packer_rng"])
        self.counters.load_state(state["counters"])
        self.batches_emitted = int(state["batches_emitted"])

    def next_sample(self) -> tuple[PackableSample, int]:
        """The next usable sample and its group index; unusable rows are counted and skipped.

        Raises ``NoUsableSampleError`` after ``mix.max_consecutive_skips`` skipped rows in a row.
        """
        budget = self.mix.budget
        while True:
            g = int(self.sampler_rng.choice(len(self.streams), p=self.probabilities))
            row, dataset, where = self.streams[g].next_row()
            try:
                if isinstance(row, SampleError):
                    raise row
                sample = self.renderers[g].render(row, dataset)
            except SampleError as e:
                self.counters.add(dataset, e.reason, e.detail, where)
                self.streak.add(dataset, e.reason)
                continue
            n = sample.num_tokens(self.mix.packing.vit_patch_size, self.mix.packing.vae_downsample)
            if n > budget.max_num_tokens_per_sample:
                self.counters.add(dataset, "too_long", f"{n} tokens > {budget.max_num_tokens_per_sample}", where)
                self.streak.add(dataset, "too_long", n)
                continue
            self.streak.reset()
            return sample, g

    def _emit(self, state: dict) -> dict:
        batch = self.packer.build()
        self.batches_emitted += 1
        state["batches_emitted"] = self.batches_emitted
        batch["data_state"] = state
        return batch

    def __iter__(self) -> Iterator[dict]:
        budget = self.mix.budget
        while True:
            before = self.state()
            sample, g = self.next_sample()
            n = sample.num_tokens(self.mix.packing.vit_patch_size, self.mix.packing.vae_downsample)
            if self.packer.num_samples and self.packer.length + n > budget.max_num_tokens:
                yield self._emit(before)  # the sample opens the next batch; resuming replays it from `before`
            self.packer.add(sample, self.mix.groups[g].dropout)
            if self.packer.length >= budget.expected_num_tokens:
                yield self._emit(self.state())
