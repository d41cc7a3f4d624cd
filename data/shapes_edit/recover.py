"""Read a scene graph back from any image: palette classification, connected components, template matching.

Each pixel takes the nearest palette colour (backgrounds + shape colours; blends of the background and a shape
colour count for the nearer end) or ``UNKNOWN`` when none is close (noise, colours the world does not have). Each
connected region of one shape colour that is large enough becomes a shape: its bounding box gives the centre
(snapped to the lattice every edit keeps), the best-fitting template of ``shape_mask`` gives shape and rotation,
and the size step whose rendering overlaps the region best gives the size. On the world's own renders at >= 128 px
this is exact; on other images it is the closest scene in the world's vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from data.shapes_edit.render import MAX_SIZE_PX, MIN_SIZE_PX, PALETTE_NAMES, PALETTE_RGB, pixel_box, shape_mask
from data.shapes_edit.scene import (BACKGROUNDS, CANVAS, LATTICE, ORIENTED_SHAPES, ROTATIONS, SHAPES, SIZE_STEP,
                                    Scene, Shape)

UNKNOWN = -1
EXACT_MIN_PX = 128  # the world's own renders read back exactly from this side up (1,800 random scenes)
MAX_COLOUR_DISTANCE = 80.0  # RGB distance beyond which a pixel matches no palette colour
MIN_AREA_FRACTION = 0.15  # of the pixel area of the smallest box (size 100); drops specks of noise
SMALLEST_SIZE = 100

N_BACKGROUNDS = len(BACKGROUNDS)
PALETTE_FLOAT = PALETTE_RGB.astype(np.float32)
TEMPLATES: tuple[tuple[str, int], ...] = tuple(
    (shape, rot) for shape in SHAPES for rot in (ROTATIONS if shape in ORIENTED_SHAPES else (0,)))


@dataclass
class Recovery:
    scene: Scene
    fits: list[float]  # template IoU per recovered shape, in scene order
    rejected: int  # regions of a shape colour too small to be a shape (specks of noise, blur fringes)


def square_image(image: Image.Image) -> np.ndarray:
    """RGB pixels, resized (nearest, so no new colours) to a square of 64..512 px when the image is not one."""
    image = image.convert("RGB")
    w, h = image.size
    side = min(max(w, h, MIN_SIZE_PX), MAX_SIZE_PX)
    if (w, h) != (side, side):
        image = image.resize((side, side), Image.Resampling.NEAREST)
    return np.asarray(image)


def classify_pixels(pixels: np.ndarray) -> np.ndarray:
    """(H, W) palette index per pixel, ``UNKNOWN`` where nothing is within ``MAX_COLOUR_DISTANCE``.

    A pixel takes the nearest palette colour, unless a blend of the image's background and a shape colour (the RGB
    segment between them, which blur and resampling make at shape edges) is nearer still: then it takes the end of
    the blend it is closer to, so a blurred edge falls where the sharp one was.
    """
    # Classify each distinct colour once: renders have about ten, photo-like images far fewer than pixels.
    packed = pixels.reshape(-1, 3).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.int32)
    colours, inverse = np.unique(packed, return_inverse=True)
    inverse = inverse.ravel()
    rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], 1).astype(np.float32)
    pure = ((rgb[:, None, :] - PALETTE_FLOAT[None, :, :]) ** 2).sum(-1)  # (colours in image, palette)
    label, dist = pure.argmin(1), pure.min(1)
    # the background: the background colour most pixels are nearest to
    weight = np.bincount(inverse, minlength=len(rgb))
    background = int(np.bincount(label, weights=weight, minlength=len(PALETTE_NAMES))[:N_BACKGROUNDS].argmax())
    offset = rgb - PALETTE_FLOAT[background]
    span = PALETTE_FLOAT[N_BACKGROUNDS:] - PALETTE_FLOAT[background]  # (shape colours, 3)
    t = np.clip(offset @ span.T / (span ** 2).sum(1), 0.0, 1.0)  # position along each background -> colour blend
    blend = ((offset[:, None, :] - t[..., None] * span[None]) ** 2).sum(-1)
    nearest = blend.argmin(1)
    rows = np.arange(len(rgb))
    better = blend[rows, nearest] < dist
    label[better] = np.where(t[rows, nearest] >= 0.5, N_BACKGROUNDS + nearest, background)[better]
    dist[better] = blend[rows, nearest][better]
    label[dist > MAX_COLOUR_DISTANCE ** 2] = UNKNOWN
    return label[inverse].reshape(pixels.shape[:2])


def _snap(value: float, step: int) -> int:
    return int(round(value / step)) * step


def _iou_in_box(region: np.ndarray, origin: tuple[int, int], template: np.ndarray, box: tuple[int, int]) -> float:
    """IoU of a region mask and a template mask, each placed at its own (y, x) pixel origin."""
    y0, x0 = min(origin[0], box[0]), min(origin[1], box[1])
    y1 = max(origin[0] + region.shape[0], box[0] + template.shape[0])
    x1 = max(origin[1] + region.shape[1], box[1] + template.shape[1])
    a = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    b = np.zeros_like(a)
    a[origin[0] - y0:origin[0] - y0 + region.shape[0], origin[1] - x0:origin[1] - x0 + region.shape[1]] = region
    b[box[0] - y0:box[0] - y0 + template.shape[0], box[1] - x0:box[1] - x0 + template.shape[1]] = template
    return float((a & b).sum() / (a | b).sum())


def _best_template(region: np.ndarray, origin: tuple[int, int], snapped: Shape, side: int) -> tuple[str, int, float]:
    """Best (shape, rotation, IoU). Each template is tried fitted to the region's own bounding box (robust to shapes
    drawn off the lattice) and where the renderer would put it at the snapped geometry (exact on the world's renders,
    where thin tips can fall between pixel centres and shrink the bounding box)."""
    h, w = region.shape
    best = ("square", 0, -1.0)
    for shape, rot in TEMPLATES:
        fitted = shape_mask(shape, rot, w, h)
        iou = max(float((fitted & region).sum() / (fitted | region).sum()),
                  _rendered_iou(region, origin, snapped.replace(shape=shape, rotation=rot), side))
        if iou > best[2]:
            best = (shape, rot, iou)
    return best


def _rendered_iou(region: np.ndarray, origin: tuple[int, int], shape: Shape, side: int) -> float:
    x0, y0, x1, y1 = pixel_box(shape, side, side)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return _iou_in_box(region, origin, shape_mask(shape.shape, shape.rotation, x1 - x0, y1 - y0), (y0, x0))


def _centred_iou(region: np.ndarray, origin: tuple[int, int], shape: Shape, side: int) -> float:
    """IoU with the shape drawn at ``shape.size`` but centred on the region itself, not on the lattice."""
    px = shape.size * side / CANVAS
    cy, cx = origin[0] + region.shape[0] / 2, origin[1] + region.shape[1] / 2
    y0, x0 = math.floor(cy - px / 2 + 0.5), math.floor(cx - px / 2 + 0.5)
    y1, x1 = math.floor(cy + px / 2 + 0.5), math.floor(cx + px / 2 + 0.5)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return _iou_in_box(region, origin, shape_mask(shape.shape, shape.rotation, x1 - x0, y1 - y0), (y0, x0))


def _best_size(region: np.ndarray, origin: tuple[int, int], guess: Shape, side: int) -> tuple[Shape, float]:
    """The size step around the bounding-box guess whose rendering overlaps the region best, drawn on the lattice
    (exact for the world's renders) or on the region's own centre (for shapes drawn a little off). Thin tips (stars)
    can vanish under blur or JPEG and shrink the bounding box; the area still says which size was drawn."""
    candidates = [guess.replace(size=s) for s in (guess.size - SIZE_STEP, guess.size, guess.size + SIZE_STEP)
                  if s >= SIZE_STEP]
    scored = [(max(_rendered_iou(region, origin, c, side), _centred_iou(region, origin, c, side)), c)
              for c in candidates]
    iou, best = max(scored, key=lambda t: (t[0], t[1] == guess))
    return best, iou


def recover_pixels(pixels: np.ndarray, classes: np.ndarray | None = None) -> Recovery:
    side = pixels.shape[0]
    classes = classify_pixels(pixels) if classes is None else classes
    counts = np.bincount(classes[classes >= 0].ravel(), minlength=len(PALETTE_NAMES))
    background = PALETTE_NAMES[int(counts[:N_BACKGROUNDS].argmax())]
    min_area = MIN_AREA_FRACTION * (SMALLEST_SIZE * side / CANVAS) ** 2
    scale = CANVAS / side
    shapes, fits, rejected = [], [], 0
    for index in range(N_BACKGROUNDS, len(PALETTE_NAMES)):
        if counts[index] < min_area:
            continue
        labels, _ = ndimage.label(classes == index)
        areas = np.bincount(labels.ravel())
        for label, slices in enumerate(ndimage.find_objects(labels), start=1):
            if areas[label] < min_area:
                rejected += 1
                continue
            ys, xs = slices
            x = min(max(_snap((xs.start + xs.stop) / 2 * scale, LATTICE), 0), CANVAS)
            y = min(max(_snap((ys.start + ys.stop) / 2 * scale, LATTICE), 0), CANVAS)
            size = max(SIZE_STEP, _snap(max(xs.stop - xs.start, ys.stop - ys.start) * scale, SIZE_STEP))
            region, origin = labels[slices] == label, (ys.start, xs.start)
            snapped = Shape(y=y, x=x, shape="square", colour=PALETTE_NAMES[index], size=size)
            shape, rot, _ = _best_template(region, origin, snapped, side)
            best, iou = _best_size(region, origin, snapped.replace(shape=shape, rotation=rot), side)
            shapes.append(best)
            fits.append(iou)
    order = sorted(range(len(shapes)), key=lambda i: shapes[i])
    return Recovery(Scene(background, tuple(shapes)), [fits[i] for i in order], rejected)


def recover_scene(image: Image.Image) -> Scene:
    """The scene graph an image shows (exact for the world's renders at 128 px and above)."""
    return recover_pixels(square_image(image)).scene

