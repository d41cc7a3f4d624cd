"""Loader throughput: packed tokens/s and samples/s one rank's DataLoader delivers with N workers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice

from data.packed_dataset import PackedMixDataset, make_loader


@dataclass(frozen=True)
class LoaderThroughput:
    num_workers: int
    batches: int
    samples: int
    tokens: int
    seconds: float
    cpu_seconds: float | None = None  # CPU time of the loading itself; measurable only in-process (0 workers)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds

    @property
    def tokens_per_cpu_s(self) -> float | None:
        return None if self.cpu_seconds is None else self.tokens / self.cpu_seconds


def measure_loader(dataset: PackedMixDataset, num_batches: int, warmup_batches: int = 2) -> LoaderThroughput:
    """Times ``num_batches`` batches after ``warmup_batches`` (worker start-up and first reads excluded)."""
    batches = iter(make_loader(dataset))
    for _ in islice(batches, warmup_batches):
        pass
    samples = tokens = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for batch in islice(batches, num_batches):
        samples += len(batch["sample_lens"])
        tokens += batch["sequence_length"]
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start if dataset.num_workers == 0 else None
    return LoaderThroughput(dataset.num_workers, num_batches, samples, tokens, seconds, cpu)
