"""Edit prompts for Flow-GRPO: a source image, an instruction, optionally the dataset's Meta-CoT and a ShapesEdit
reference, read from the same JSONL / parquet sources as SFT or from a ShapesEdit benchmark folder (``samples.jsonl``).

The stream is ``data.sources.stream.ShardedStream`` (deterministic, split over ranks, resumable from three
integers); rows that are not edits or cannot be read are skipped and counted by reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from data.render import SampleError, cot_text, decode_image, free_thinking_text
from data.sources.jsonl import JsonlSource
from data.sources.parquet import ParquetSource
from data.sources.stream import ShardedStream

EDIT_KINDS = ("edit", "edit_cot", None)  # benchmark rows have no kind


@dataclass
class EditPrompt:
    id: str
    source_image: Image.Image
    instruction: str
    cot_text: str | None = None  # the dataset's Meta-CoT as training text (inside <think> tags)
    reference: dict | None = None  # ShapesEdit ground truth: source_scene, target_scene, cot


class PromptStream(Protocol):
    """What the trainer draws prompts from: ``take(n)`` prompts, and a state to save and restore exactly."""

    def take(self, n: int) -> list[EditPrompt]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def _dataset_cot(row: dict) -> str | None:
    """The record's Meta-CoT (edit_cot JSON or text, a benchmark reference's CoT) or free thinking (edit rows)."""
    cot = row.get("cot")
    if row.get("kind") == "edit":
        return free_thinking_text(cot) if isinstance(cot, str) and cot.strip() else None
    if not cot:
        cot = (row.get("reference") or {}).get("cot")
    return cot_text(cot) if cot else None


def _reference(row: dict) -> dict | None:
    """The benchmark's ``reference`` object, or the ShapesEdit scenes of a training row's ``meta`` plus its CoT."""
    if isinstance(row.get("reference"), dict):
        return row["reference"]
    meta = row.get("meta")
    if isinstance(meta, str) and meta.strip().startswith("{"):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError as e:
            raise SampleError("bad_meta", str(e)) from e
    if isinstance(meta, dict) and "source_scene" in meta and "target_scene" in meta:
        cot = row.get("cot")
        cot = json.loads(cot) if isinstance(cot, str) and cot.strip().startswith("{") else None
        return {"source_scene": meta["source_scene"], "target_scene": meta["target_scene"], "cot": cot}
    return None


def row_to_prompt(row: dict, require_cot: bool = False) -> EditPrompt:
    """A source row -> EditPrompt; raises SampleError (with a counter key) for rows that are not usable edits."""
    if row.get("kind") not in EDIT_KINDS:
        raise SampleError("not_an_edit", f"kind {row.get('kind')!r}")
    instruction = row.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise SampleError("missing_field", "no instruction")
    cot = _dataset_cot(row)
    if require_cot and cot is None:
        raise SampleError("missing_cot", "rollout.cot_source=dataset needs a cot (or reference.cot) in every record")
    return EditPrompt(id=str(row.get("id", "")), source_image=decode_image(row.get("source_image"), "source_image"),
                      instruction=instruction, cot_text=cot, reference=_reference(row))


def open_sources(paths: list[str], image_root: str | None = None) -> list[Any]:
    """One source per file kind found at ``paths`` (files, folders or globs; a benchmark folder is a JSONL file)."""
    sources = []
    for name, cls, suffix in (("rl_jsonl", JsonlSource, ".jsonl"), ("rl_parquet", ParquetSource, ".parquet")):
        matching = [p for p in paths if p.endswith(suffix) or not p.endswith((".jsonl", ".parquet"))]
        try:
            sources.append(cls(name, matching, image_root=image_root) if cls is JsonlSource else cls(name, matching))
        except FileNotFoundError:
            continue
    if not sources:
        raise FileNotFoundError(f"no .jsonl or .parquet prompt files at {paths}; point data.paths at edit records "
                                "or a ShapesEdit benchmark folder (samples.jsonl)")
    return sources


class ShardedPromptStream:
    """Edit prompts of this rank, endless (epochs reshuffle), resumable."""

    def __init__(self, paths: list[str], rank: int, world_size: int, seed: int, image_root: str | None = None,
                 max_prompts: int | None = None, require_cot: bool = False) -> None:
        sources = open_sources(paths, image_root)
        self.require_cot = require_cot
        self.stream = ShardedStream(sources, [max_prompts] * len(sources), seed, rank, world_size)
        self.skipped: Counter[str] = Counter()
        self.max_skips_in_a_row = 10 * self.stream.total_rows  # a whole epoch of unusable rows: stop, say why

    def take(self, n: int) -> list[EditPrompt]:
        out, skips_in_a_row = [], 0
        while len(out) < n:
            row, _, ref = self.stream.next_row()
            try:
                if isinstance(row, SampleError):
                    raise row
                out.append(row_to_prompt(row, self.require_cot))
                skips_in_a_row = 0
            except SampleError as e:
                self.skipped[e.reason] += 1
                skips_in_a_row += 1
                if skips_in_a_row > self.max_skips_in_a_row:
                    raise RuntimeError(f"no usable edit prompt in the data (last: {ref}: {e}); skipped so far: "
                                       f"{dict(self.skipped)}") from e
        return out

    def state_dict(self) -> dict:
        return {"stream": self.stream.state(), "skipped": dict(self.skipped)}

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state(state["stream"])
        self.skipped = Counter(state["skipped"])
