"""Image grids for eyeballing a run: per category, rows of source | result | instruction, score and CoT text."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from data.image_io import load_image
from inference.benchmark.files import atomic_write_png, read_json
from inference.benchmark.layout import RunLayout
from inference.benchmark.schema import LoadedBenchmark
from inference.benchmark.score import load_score

TEXT_WIDTH_CHARS = 70
MAX_TEXT_LINES = 22
HEADER = 18


def _thumbnail(image: Image.Image, size: int) -> Image.Image:
    image = ImageOps.contain(image.convert("RGB"), (size, size), Image.Resampling.BICUBIC)  # up or down
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return canvas


def _text_lines(instruction: str, score_line: str, cot: str | None) -> list[str]:
    lines = textwrap.wrap(f"Instruction: {instruction}", TEXT_WIDTH_CHARS) + [score_line, ""]
    for paragraph in (cot or "(no CoT)").splitlines():
        lines += textwrap.wrap(paragraph, TEXT_WIDTH_CHARS) or [""]
    if len(lines) > MAX_TEXT_LINES:
        lines = lines[:MAX_TEXT_LINES - 1] + ["..."]
    return lines


def write_grids(bench: LoadedBenchmark, layout: RunLayout, scorer: str | None = None, per_category: int = 6,
                thumb: int = 256) -> list[Path]:
    """One PNG per category with up to ``per_category`` generated samples; returns the files written."""
    font = ImageFont.load_default()
    text_width = thumb * 2
    by_category = defaultdict(list)
    for sample in bench.samples:
        if layout.image(sample.id).is_file() and len(by_category[sample.category]) < per_category:
            by_category[sample.category].append(sample)
    written = []
    for category, samples in sorted(by_category.items()):
        grid = Image.new("RGB", (thumb * 2 + text_width, HEADER + thumb * len(samples)), (255, 255, 255))
        draw = ImageDraw.Draw(grid)
        for x, label in ((0, "source"), (thumb, "result"), (thumb * 2, f"{category}: instruction, score, CoT")):
            draw.text((x + 6, 3), label, fill=(90, 90, 90), font=font)
        for row, sample in enumerate(samples):
            y = HEADER + row * thumb
            grid.paste(_thumbnail(bench.open_source(sample), thumb), (0, y))
            grid.paste(_thumbnail(load_image(layout.image(sample.id)), thumb), (thumb, y))
            record = load_score(layout, scorer, sample.id) if scorer else None
            score = "not scored" if record is None else (
                f"{scorer}: {record.overall:.2f}" if record.ok else f"{scorer}: {record.status}")
            gen = read_json(layout.gen_record(sample.id)) or {}
            text = "\n".join(_text_lines(sample.instruction, f"{sample.id} | {score}", gen.get("cot_text")))
            draw.multiline_text((thumb * 2 + 8, y + 6), text, fill=(0, 0, 0), font=font, spacing=2)
            draw.line([(0, y + thumb - 1), (grid.width, y + thumb - 1)], fill=(200, 200, 200))
        atomic_write_png(layout.grid(category), grid)
        written.append(layout.grid(category))
    return written
