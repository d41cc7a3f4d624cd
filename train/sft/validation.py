"""Validation edits during training: fixed prompts edited with the current EMA weights, saved as a grid + CoT text.

Prompts are a JSONL file, one object per line: ``{"image": "path.png", "instruction": "...", "think": true}``
(relative image paths are read from the JSONL's folder). Rank 0 runs them with the inference code on a full copy
of the EMA weights; every row of the grid is [source | edit], and the thinking text goes to ``cot.md`` beside it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from data.image_io import load_image
from train.common.config import ConfigError


@dataclass
class ValidationConfig:
    every: int = 0                   # steps between validation grids (0: off)
    prompts: str | None = None       # JSONL of {"image", "instruction", "think"}
    seed: int = 0
    # Passed to the edit call (InferenceSettings fields), e.g. {num_timesteps: 25, cfg_text_scale: 4.0}
    inference: dict[str, Any] = field(default_factory=lambda: {"num_timesteps": 25})

    def validate(self) -> None:
        if self.every < 0:
            raise ConfigError(f"validation.every must be >= 0, got {self.every}")
        if self.every and not self.prompts:
            raise ConfigError("validation.every > 0 needs validation.prompts (a JSONL of image/instruction/think)")


@dataclass
class ValidationPrompt:
    image: Image.Image
    instruction: str
    think: bool


def load_prompts(path: str) -> list[ValidationPrompt]:
    prompts = []
    root = Path(path).parent
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                image = load_image(root / row["image"])
                prompts.append(ValidationPrompt(image, str(row["instruction"]), bool(row.get("think", True))))
            except (json.JSONDecodeError, KeyError, ValueError) as e:  # ImageLoadError is a ValueError
                raise ValueError(f"{path}:{number}: bad validation prompt ({type(e).__name__}: {e}); each line needs "
                                 '{"image": "file.png", "instruction": "...", "think": true}') from e
    if not prompts:
        raise ValueError(f"{path} holds no validation prompts")
    return prompts


def edit_grid(rows: list[tuple[Image.Image, Image.Image]], height: int = 256) -> Image.Image:
    """[source | edit] per row, each scaled to ``height`` pixels high."""
    scaled = [[im.resize((max(1, im.width * height // im.height), height)) for im in row] for row in rows]
    width = max(sum(im.width for im in row) for row in scaled)
    grid = Image.new("RGB", (width, height * len(scaled)), "white")
    for r, row in enumerate(scaled):
        x = 0
        for im in row:
            grid.paste(im, (x, r * height))
            x += im.width
    return grid


def run_validation(inferencer: Any, prompts: list[ValidationPrompt], cfg: ValidationConfig,
                   out_dir: str) -> Image.Image:
    """Edit every prompt, write ``grid.png`` and ``cot.md`` into ``out_dir``; returns the grid."""
    os.makedirs(out_dir, exist_ok=True)
    rows, notes = [], []
    for i, prompt in enumerate(prompts):
        result = inferencer.edit(prompt.image, prompt.instruction, think=prompt.think, seed=cfg.seed,
                                 **cfg.inference)
        rows.append((prompt.image, result.image))
        notes.append(f"## {i}: {prompt.instruction}\n\n{result.think_text or '(no thinking)'}\n")
    grid = edit_grid(rows)
    tmp = os.path.join(out_dir, "grid.tmp.png")
    grid.save(tmp)
    os.replace(tmp, os.path.join(out_dir, "grid.png"))
    with open(os.path.join(out_dir, "cot.md.tmp"), "w") as f:
        f.write("\n".join(notes))
    os.replace(os.path.join(out_dir, "cot.md.tmp"), os.path.join(out_dir, "cot.md"))
    return grid
