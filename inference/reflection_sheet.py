"""A contact sheet of a reflection loop: the source and every round's result side by side, each with the instruction
it followed and the verdict the model gave."""

from __future__ import annotations

import textwrap

from PIL import Image, ImageDraw, ImageFont

from .reflection import ReflectionResult

MARGIN, LINE_H, TEXT_LINES = 10, 14, 8


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _caption(round_) -> list[str]:
    verdict = round_.verdict
    said = verdict.reason if verdict is not None else repr(round_.verdict_text.strip()[:200])
    return [f"edit: {round_.instruction}", f"verdict {round_.outcome}: {said}"]


def reflection_sheet(source: Image.Image, result: ReflectionResult, thumb: int = 256) -> Image.Image:
    """[source | round 1 | round 2 | ...], titled, with the instruction and verdict of each round underneath."""
    panels = [("source", source, [])] + [(f"round {r.round}", r.image, _caption(r)) for r in result.rounds]
    cell_w = thumb + MARGIN
    height = MARGIN + LINE_H + thumb + 4 + TEXT_LINES * LINE_H + MARGIN
    sheet = Image.new("RGB", (MARGIN + len(panels) * cell_w, height), (245, 245, 245))
    draw, font = ImageDraw.Draw(sheet), _font()
    chars = max(16, int(thumb / 6.5))
    for i, (title, image, caption) in enumerate(panels):
        x = MARGIN + i * cell_w
        draw.text((x, MARGIN), title + (f" (stopped: {result.stop_reason})" if i == len(panels) - 1 else ""),
                  fill=(20, 20, 20), font=font)
        top = MARGIN + LINE_H
        shown = image.convert("RGB")
        scale = thumb / max(shown.size)  # every panel as large as the cell, small results enlarged pixel by pixel
        shown = shown.resize((max(1, round(shown.width * scale)), max(1, round(shown.height * scale))),
                             Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS)
        sheet.paste(shown, (x, top))
        lines = [wrapped for text in caption for wrapped in textwrap.wrap(text, chars)][:TEXT_LINES]
        for k, line in enumerate(lines):
            draw.text((x, top + thumb + 4 + k * LINE_H), line, fill=(40, 40, 40), font=font)
    return sheet
