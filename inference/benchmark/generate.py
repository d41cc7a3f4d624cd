"""Generation stage: run the editor over one rank's share of a benchmark, resumably.

A sample is finished when both ``images/<id>.png`` and ``gen/<id>.json`` exist (the image is written first, the
record last, each atomically), so an interrupted run redoes only unfinished samples. Ranks take a strided share
(``samples[rank::world_size]``, balanced across categories), and each sample's seed is derived from the base seed
and its id, so results do not depend on the number of ranks or on the order of work.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from PIL import Image
from tqdm import tqdm

from data.image_io import ImageLoadError
from inference.benchmark.editor import Editor
from inference.benchmark.files import atomic_write_json, atomic_write_png, read_json
from inference.benchmark.layout import RunLayout
from inference.benchmark.rounds import save_rounds
from inference.benchmark.schema import BenchSample, LoadedBenchmark

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenSettings:
    think: bool = False
    seed: int = 0
    hyper: dict[str, Any] = field(default_factory=dict)  # passed to editor.edit(**hyper) unchanged

    def to_dict(self) -> dict:
        return {"think": self.think, "seed": self.seed, "hyper": dict(self.hyper)}


@dataclass
class GenOutcome:
    generated: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # id -> one-line error


def sample_seed(base_seed: int, sample_id: str) -> int:
    digest = hashlib.sha256(f"{base_seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def shard(samples: Sequence[BenchSample], rank: int, world_size: int) -> list[BenchSample]:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} / world size {world_size} is invalid; expected 0 <= rank < world_size")
    return list(samples[rank::world_size])


def is_generated(layout: RunLayout, sample_id: str) -> bool:
    return layout.image(sample_id).is_file() and read_json(layout.gen_record(sample_id)) is not None


def run_generation(editor: Editor, bench: LoadedBenchmark, layout: RunLayout, settings: GenSettings,
                   rank: int = 0, world_size: int = 1, show_progress: bool = True) -> GenOutcome:
    outcome = GenOutcome()
    mine = shard(bench.samples, rank, world_size)
    todo = []
    for sample in mine:
        if is_generated(layout, sample.id):
            outcome.already_done.append(sample.id)
        else:
            todo.append(sample)
    if outcome.already_done:
        log.info("rank %d: %d of %d samples already generated, skipped", rank, len(outcome.already_done), len(mine))
    bar = tqdm(todo, desc=f"generate[{rank}/{world_size}]", disable=not show_progress or rank != 0)
    for sample in bar:
        try:
            source = bench.open_source(sample)
        except ImageLoadError as e:
            outcome.failed[sample.id] = f"unreadable source image {sample.source_image}: {e}"
            continue
        try:
            record = _edit_one(editor, sample, source, settings, layout, rank, world_size)
        except Exception as e:  # one bad sample must not lose a multi-hour run; counted and reported
            log.exception("sample %s failed", sample.id)
            outcome.failed[sample.id] = f"{type(e).__name__}: {e}"
            continue
        outcome.generated.append(record["id"])
    return outcome


def _edit_one(editor: Editor, sample: BenchSample, source: Image.Image, settings: GenSettings, layout: RunLayout,
              rank: int, world_size: int) -> dict:
    seed = sample_seed(settings.seed, sample.id)
    start = time.perf_counter()
    result = editor.edit(source, sample.instruction, think=settings.think, seed=seed, **settings.hyper)
    seconds = time.perf_counter() - start
    if not isinstance(result.image, Image.Image):
        raise TypeError(f"editor returned {type(result.image).__name__} as .image; expected a PIL image")
    atomic_write_png(layout.image(sample.id), result.image.convert("RGB"))
    reflection = save_rounds(layout, sample.id, result)
    record = {
        "id": sample.id,
        "category": sample.category,
        "language": sample.language,
        "instruction": sample.instruction,
        "image": str(layout.image(sample.id).relative_to(layout.root)),
        "cot_text": result.think_text,
        "settings": settings.to_dict(),
        "editor_settings": getattr(result, "settings", None),  # the editor's resolved knobs, when it reports them
        "seed": seed,
        "seconds": round(seconds, 4),
        "timings": {str(k): float(v) for k, v in (result.timings or {}).items() if isinstance(v, (int, float))},
        "rank": rank,
        "world_size": world_size,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **({"reflection": reflection} if reflection else {}),
    }
    atomic_write_json(layout.gen_record(sample.id), record)
    return record
