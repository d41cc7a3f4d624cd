"""ImgEdit basic / singleturn -> common folder, with the official per-edit-type judge prompts.

Inputs: the metadata JSON (``singleturn.json`` from HF ``sysuyy/ImgEdit`` ``Benchmark.tar``, or ``basic_edit.json``
from the GitHub repo): ``key -> {"id": "<folder>/<file>.jpg", "prompt": ..., "edit_type": ...}``; the image root the
``id`` paths are relative to; and the prompts JSON (``judge_prompt.json`` / ``prompts.json``: edit type -> prompt
with ``<edit_prompt>``), copied to ``judge_prompts.json`` under ``"imgedit"``. An edit type without its own prompt is
mapped through ``EDIT_TYPE_ALIASES`` (the repo's metadata says ``alter`` where the prompts say ``adjust``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from PIL import Image

from data.image_io import load_image
from inference.benchmark.converters import ConvertStats
from inference.benchmark.schema import BenchSample, make_safe_id, write_benchmark

EDIT_TYPE_ALIASES = {"alter": "adjust"}


def convert_imgedit(meta_json: str | Path, image_root: str | Path, prompts_json: str | Path,
                    out_dir: str | Path) -> ConvertStats:
    meta = json.loads(Path(meta_json).read_text(encoding="utf-8"))
    prompts = json.loads(Path(prompts_json).read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or not isinstance(prompts, dict):
        raise ValueError(f"{meta_json} and {prompts_json} must both be JSON objects (ImgEdit format)")
    stats = ConvertStats()

    def entries() -> Iterator[tuple[BenchSample, Image.Image]]:
        for key, item in meta.items():
            try:
                edit_type = item["edit_type"]
                category = edit_type if edit_type in prompts else EDIT_TYPE_ALIASES.get(edit_type, edit_type)
                if category not in prompts:
                    raise ValueError(f"no judge prompt for edit type {edit_type!r}")
                sample_id = make_safe_id(str(key))
                image = load_image(Path(image_root) / item["id"])
                sample = BenchSample(sample_id, f"images/{sample_id}.png", item["prompt"], category, "en",
                                     {"orig_key": str(key), "orig_image": item["id"], "orig_edit_type": edit_type})
            except (KeyError, TypeError, ValueError) as e:  # ImageLoadError is a ValueError
                stats.skipped.append(f"{key}: {type(e).__name__}: {e}")
                continue
            yield sample, image

    stats.written = write_benchmark(out_dir, entries(), judge_prompts={"imgedit": prompts})
    return stats
