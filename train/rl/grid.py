"""An image grid of one group for the logs: the source, the G edits with their rewards, the instruction and CoT."""

from __future__ import annotations

import textwrap

from PIL import Image, ImageDraw, ImageFont, ImageOps

from train.rl.rewards.base import RewardResult
from train.rl.rollout import GroupRollout

THUMB = 160
COLUMNS = 4
TEXT_CHARS = 110
TEXT_LINES = 14
LINE_HEIGHT = 12


def _thumb(image: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (THUMB, THUMB), (255, 255, 255))
    image = ImageOps.contain(image.convert("RGB"), (THUMB, THUMB))
    canvas.paste(image, ((THUMB - image.width) // 2, (THUMB - image.height) // 2))
    return canvas


def group_grid(rollout: GroupRollout, results: list[RewardResult], advantages: list[float]) -> Image.Image:
    """Source first, then the members (reward and advantage under each), then the instruction and CoT."""
    font = ImageFont.load_default()
    tiles = [("source", rollout.prompt.source_image)]
    for g, (image, result) in enumerate(zip(rollout.images, results)):
        score = "dropped" if result.score is None else f"{result.score:.2f}"
        tiles.append((f"#{g} r={score} A={advantages[g]:+.2f}", image))
    rows = -(-len(tiles) // COLUMNS)
    text = textwrap.wrap(f"Instruction: {rollout.prompt.instruction}", TEXT_CHARS)
    for paragraph in (rollout.cot_text or "(no CoT)").splitlines():
        text += textwrap.wrap(paragraph, TEXT_CHARS) or [""]
    text = text[:TEXT_LINES]
    cell = THUMB + LINE_HEIGHT + 4
    grid = Image.new("RGB", (COLUMNS * THUMB, rows * cell + len(text) * LINE_HEIGHT + 8), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for k, (label, image) in enumerate(tiles):
        x, y = (k % COLUMNS) * THUMB, (k // COLUMNS) * cell
        grid.paste(_thumb(image), (x, y))
        draw.text((x + 3, y + THUMB + 1), label, fill=(40, 40, 40), font=font)
    for i, line in enumerate(text):
        draw.text((4, rows * cell + 4 + i * LINE_HEIGHT), line, fill=(40, 40, 40), font=font)
    return grid
