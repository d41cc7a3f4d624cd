"""A contact sheet: per category, source -> target thumbnails with the instruction underneath."""

from __future__ import annotations

import textwrap

from PIL import Image, ImageDraw, ImageFont

from data.shapes_edit.render import render
from data.shapes_edit.tasks import CATEGORIES, make_edit_sample

COLUMNS = 3
MARGIN = 12
ARROW_W = 28
TEXT_LINES = 3
LINE_H = 15


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def contact_sheet(thumb: int = 128, seed: int = 0, categories: list[str] | None = None) -> Image.Image:
    """One cell per category (its sample of stream ``sheet/<seed>``): name, source -> target, instruction."""
    names = list(categories or CATEGORIES)
    cell_w = 2 * thumb + ARROW_W + 2 * MARGIN
    cell_h = LINE_H + 6 + thumb + 4 + TEXT_LINES * LINE_H + MARGIN
    rows = -(-len(names) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * cell_w + MARGIN, rows * cell_h + MARGIN), (245, 245, 245))
    draw = ImageDraw.Draw(sheet)
    title, body = _font(14), _font(12)
    chars_per_line = max(20, int((2 * thumb + ARROW_W) / 6.2))
    for i, name in enumerate(names):
        sample = make_edit_sample(name, f"sheet/{seed}")
        x = MARGIN + (i % COLUMNS) * cell_w
        y = MARGIN + (i // COLUMNS) * cell_h
        draw.text((x, y), f"{i + 1}. {name}", fill=(20, 20, 20), font=title)
        top = y + LINE_H + 6
        for j, scene in enumerate((sample.source, sample.target)):
            left = x + j * (thumb + ARROW_W)
            sheet.paste(render(scene, thumb), (left, top))
            draw.rectangle((left - 1, top - 1, left + thumb, top + thumb), outline=(120, 120, 120))
        mid = top + thumb // 2
        ax = x + thumb + 6
        draw.line((ax, mid, ax + ARROW_W - 12, mid), fill=(60, 60, 60), width=2)
        draw.polygon([(ax + ARROW_W - 12, mid - 5), (ax + ARROW_W - 6, mid), (ax + ARROW_W - 12, mid + 5)],
                     fill=(60, 60, 60))
        lines = textwrap.wrap(sample.instruction, chars_per_line)
        if len(lines) > TEXT_LINES:
            lines = lines[:TEXT_LINES]
            lines[-1] = lines[-1][: chars_per_line - 3] + "..."
        for k, line in enumerate(lines):
            draw.text((x, top + thumb + 4 + k * LINE_H), line, fill=(40, 40, 40), font=body)
    return sheet
