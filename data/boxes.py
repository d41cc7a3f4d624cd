"""The box convention of grounded reasoning: ``[x0, y0, x1, y1]`` as integers in [0, 1000), as GoT writes boxes.

A coordinate is ``floor(1000 * position / side)`` clamped to 999, so boxes mean the same thing at every image size:
``[0, 0, 999, 999]`` is the whole image, and the right and bottom borders are 999. ShapesEdit's canvas units are
already thousandths, so its boxes only clamp the border (1000 -> 999).
"""

from __future__ import annotations

BOX_SCALE = 1000  # coordinates are integers in [0, BOX_SCALE)

Box = tuple[int, int, int, int]


def box_problem(box: tuple) -> str | None:
    """Why ``box`` is not a box of the convention (None when it is one)."""
    if len(box) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in box):
        return f"box {list(box)} must be 4 integers [x0, y0, x1, y1]"
    if not all(0 <= v < BOX_SCALE for v in box):
        return f"box {list(box)} has a coordinate outside [0, {BOX_SCALE}); boxes are thousandths of the image, 0..999"
    if box[0] > box[2] or box[1] > box[3]:
        return f"box {list(box)} must have x0 <= x1 and y0 <= y1"
    return None


def normalise_box(box: tuple[float, float, float, float], width: float, height: float) -> Box:
    """A box in pixels (or any units spanning ``width`` x ``height``) -> the [0, 1000) convention."""
    def scale(v: float, side: float) -> int:
        return min(BOX_SCALE - 1, max(0, int(v * BOX_SCALE // side)))

    x0, y0, x1, y1 = box
    return scale(x0, width), scale(y0, height), scale(x1, width), scale(y1, height)


def box_to_pixels(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel box a normalised box covers (the border coordinate 999 reaches the last pixel row / column)."""
    x0, y0, x1, y1 = box
    edge = BOX_SCALE - 1
    return (x0 * width // BOX_SCALE, y0 * height // BOX_SCALE,
            width if x1 == edge else x1 * width // BOX_SCALE, height if y1 == edge else y1 * height // BOX_SCALE)


def box_iou(a: tuple, b: tuple) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (0 when both are empty)."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0
