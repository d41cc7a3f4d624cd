"""The ablation plot, drawn with PIL (no plotting dependency): per row, Overall on seen and unseen categories,
bars at the mean over seeds with the seed spread as a whisker, and the judge's best degenerate baseline as a line."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from train.shapes_demo.report import RowResult

WIDTH, HEIGHT, MARGIN, SCALE_MAX = 900, 420, 60, 10.0
SERIES = (("seen", (40, 110, 200)), ("unseen", (230, 120, 30)))


def plot_ablation(results: list[RowResult], path: str | Path, floor: float = 0.0) -> None:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    top, bottom = 30, HEIGHT - 110
    y_of = lambda v: bottom - (bottom - top) * v / SCALE_MAX  # noqa: E731
    for tick in range(0, 11, 2):
        draw.line([(MARGIN, y_of(tick)), (WIDTH - 20, y_of(tick))], fill=(225, 225, 225))
        draw.text((MARGIN - 25, y_of(tick) - 6), str(tick), fill="black", font=font)
    draw.text((MARGIN, 8), "ShapesEdit ablation: exact-judge Overall (mean over seeds, whisker = spread)",
              fill="black", font=font)
    slot = (WIDTH - MARGIN - 20) / max(1, len(results))
    for i, r in enumerate(results):
        x0 = MARGIN + i * slot + slot * 0.15
        bar = slot * 0.7 / len(SERIES)
        for j, (name, colour) in enumerate(SERIES):
            value = r.over_seeds(r.seen if name == "seen" else r.unseen, "overall")
            if value is None or (name == "unseen" and not r.unseen):
                continue
            left = x0 + j * bar
            draw.rectangle([left, y_of(value.mean), left + bar - 4, bottom], fill=colour)
            mid = left + (bar - 4) / 2
            low, high = y_of(max(0.0, value.mean - value.spread)), y_of(min(SCALE_MAX, value.mean + value.spread))
            draw.line([(mid, low), (mid, high)], fill="black", width=2)
        for k, word in enumerate(r.row.name.split("_")):
            draw.text((x0, bottom + 8 + 12 * k), word, fill="black", font=font)
    draw.line([(MARGIN, y_of(floor)), (WIDTH - 20, y_of(floor))], fill=(200, 0, 0), width=1)
    for j, (name, colour) in enumerate(SERIES):
        draw.rectangle([MARGIN + 140 * j, HEIGHT - 30, MARGIN + 140 * j + 12, HEIGHT - 18], fill=colour)
        draw.text((MARGIN + 140 * j + 18, HEIGHT - 30), f"{name} categories", fill="black", font=font)
    draw.text((MARGIN + 300, HEIGHT - 30), f"red line: best degenerate baseline ({floor:.2f})", fill=(200, 0, 0),
              font=font)
    image.save(path)
