"""Read a scene graph back from any image: palette classification, connected components, template matching.

Each pixel takes the nearest palette colour (backgrounds + shape colours) or ``UNKNOWN`` when none is close (noise,
blur, colours the world does not have). Each connected region of one shape colour that is large enough becomes a
shape: its bounding box gives centre and size (snapped to the lattice every edit keeps), and the best-fitting
template of ``shape_mask`` in that box gives shape and rotation. On the world's own renders at >= 128 px this is
exact; on other images it is the closest scene in the world's vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from data.shapes_edit.render import (MAX_SIZE_PX, MIN_SIZE_PX, PALETTE_NAMES, PALETTE_RGB, pixel_box,
                                     render_indices, shape_mask)
from data.shapes_edit.scene import (BACKGROUNDS, CANVAS, LATTICE, ORIENTED_SHAPES, ROTATIONS, SHAPES, SIZE_STEP,
                                    Scene, Shape)

UNKNOWN = -1
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
    """(H, W) palette index per pixel, ``UNKNOWN`` where no palette colour is within ``MAX_COLOUR_DISTANCE``."""
    # Classify each distinct colour once: renders have about ten, photos-like images far fewer than pixels.
    packed = pixels.reshape(-1, 3).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.int32)
    colours, inverse = np.unique(packed, return_inverse=True)
    rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], 1).astype(np.float32)
    dist = ((rgb[:, None, :] - PALETTE_FLOAT[None, :, :]) ** 2).sum(-1)
    nearest = dist.argmin(1)
    nearest[dist[np.arange(len(rgb)), nearest] > MAX_COLOUR_DISTANCE ** 2] = UNKNOWN
    nearest = nearest[inverse.ravel()]
    return nearest.reshape(pixels.shape[:2])


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
    x0, y0, x1, y1 = pixel_box(snapped, side, side)
    best = ("square", 0, -1.0)
    for shape, rot in TEMPLATES:
        fitted = shape_mask(shape, rot, w, h)
        iou = float((fitted & region).sum() / (fitted | region).sum())
        if x1 > x0 and y1 > y0:
            iou = max(iou, _iou_in_box(region, origin, shape_mask(shape, rot, x1 - x0, y1 - y0), (y0, x0)))
        if iou > best[2]:
            best = (shape, rot, iou)
    return best


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
            snapped = Shape(y=y, x=x, shape="square", colour=PALETTE_NAMES[index], size=size)
            shape, rot, iou = _best_template(labels[slices] == label, (ys.start, xs.start), snapped, side)
            shapes.append(snapped.replace(shape=shape, rotation=rot))
            fits.append(iou)
    order = sorted(range(len(shapes)), key=lambda i: shapes[i])
    return Recovery(Scene(background, tuple(shapes)), [fits[i] for i in order], rejected)


def recover_scene(image: Image.Image) -> Scene:
    """The scene graph an image shows (exact for the world's renders at 128 px and above)."""
    return recover_pixels(square_image(image)).scene


def explained_fraction(classes: np.ndarray, scene: Scene) -> float:
    """Share of pixels whose palette class equals that of the scene re-rendered: 1.0 for a clean render."""
    return float((classes == render_indices(scene, classes.shape[0])).mean())
