"""Exact, aliased rendering of a scene: each pixel takes the colour of the shape whose area holds the pixel centre.

No antialiasing, so every pixel is either the background colour or one shape's colour, and the judge can read the
scene back exactly. ``shape_mask`` is the single definition of every shape's geometry; the judge uses it too, as
templates.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image

from data.shapes_edit.scene import BACKGROUNDS, CANVAS, COLOURS, Scene, Shape

MIN_SIZE_PX, MAX_SIZE_PX = 64, 512
# Background and shape colours in one indexed palette: the paletted PNGs and the judge's pixel classes use it.
PALETTE_NAMES: tuple[str, ...] = (*BACKGROUNDS, *COLOURS)
PALETTE_RGB = np.array([*BACKGROUNDS.values(), *COLOURS.values()], dtype=np.uint8)
PALETTE_INDEX = {name: i for i, name in enumerate(PALETTE_NAMES)}
CROSS_ARM = 1.0 / 3.0  # half-width of a cross arm, relative to the half side of its box
STAR_INNER = 0.45  # inner / outer radius; fatter than a pentagram so small stars stay recognisable


@lru_cache(maxsize=1)
def _star_polygon() -> np.ndarray:
    """A five-pointed star pointing up, stretched to fill the square [-1, 1]^2."""
    angles = [math.radians(-90 + 36 * k) for k in range(10)]
    radii = [1.0 if k % 2 == 0 else STAR_INNER for k in range(10)]
    pts = np.array([(r * math.cos(a), r * math.sin(a)) for r, a in zip(radii, angles)])
    pts[:, 0] /= np.abs(pts[:, 0]).max()
    ymin, ymax = pts[:, 1].min(), pts[:, 1].max()
    pts[:, 1] = (pts[:, 1] - ymin) / (ymax - ymin) * 2 - 1
    return pts


def _inside_polygon(u: np.ndarray, v: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points."""
    inside = np.zeros(u.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (y0 > v) != (y1 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < x_at)
    return inside


@lru_cache(maxsize=4096)
def shape_mask(shape: str, rotation: int, width: int, height: int) -> np.ndarray:
    """Boolean (height, width) mask of a shape filling a box of that many pixels, turned ``rotation`` clockwise.

    Cached (the same few boxes recur across a dataset) and therefore read-only."""
    mask = _compute_shape_mask(shape, rotation, width, height)
    mask.setflags(write=False)
    return mask


def _compute_shape_mask(shape: str, rotation: int, width: int, height: int) -> np.ndarray:
    u = (np.arange(width) + 0.5) / width * 2 - 1
    v = (np.arange(height) + 0.5) / height * 2 - 1
    u, v = np.meshgrid(u, v)
    # Test each pixel in the shape's own upright frame: undo the clockwise turn (image y points down).
    for _ in range((rotation // 90) % 4):
        u, v = v, -u
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.ones(u.shape, dtype=bool)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if shape == "cross":
        return np.minimum(np.abs(u), np.abs(v)) <= CROSS_ARM
    if shape == "triangle":
        return v >= 2 * np.abs(u) - 1  # apex at the top centre, base along the bottom edge
    if shape == "star":
        return _inside_polygon(u, v, _star_polygon())
    raise ValueError(f"unknown shape {shape!r}")


def pixel_box(shape: Shape, width: int, height: int) -> tuple[int, int, int, int]:
    """The shape's box in pixels, [x0, x1) x [y0, y1), rounding each edge half up."""
    half = shape.size / 2
    sx, sy = width / CANVAS, height / CANVAS
    return (math.floor((shape.x - half) * sx + 0.5), math.floor((shape.y - half) * sy + 0.5),
            math.floor((shape.x + half) * sx + 0.5), math.floor((shape.y + half) * sy + 0.5))


def render_indices(scene: Scene, size: int) -> np.ndarray:
    """(size, size) uint8 palette index per pixel (see ``PALETTE_NAMES``)."""
    if not MIN_SIZE_PX <= size <= MAX_SIZE_PX:
        raise ValueError(f"image size {size} px is outside {MIN_SIZE_PX}..{MAX_SIZE_PX}; pick a size in that range")
    indices = np.full((size, size), PALETTE_INDEX[scene.background], dtype=np.uint8)
    for s in scene.shapes:
        x0, y0, x1, y1 = pixel_box(s, size, size)
        if x1 <= x0 or y1 <= y0:
            continue
        mask = shape_mask(s.shape, s.rotation, x1 - x0, y1 - y0)
        # Clip boxes that reach past the image edge (only shapes a model drew partly out of frame do).
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
        mask = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        indices[cy0:cy1, cx0:cx1][mask] = PALETTE_INDEX[s.colour]
    return indices


def render_array(scene: Scene, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB pixels of the scene."""
    return PALETTE_RGB[render_indices(scene, size)]


def render(scene: Scene, size: int = 256) -> Image.Image:
    """The scene as an RGB image."""
    return Image.fromarray(render_array(scene, size), "RGB")


def render_paletted(scene: Scene, size: int = 256) -> Image.Image:
    """The same pixels as a palette ("P") image, which encodes to PNG several times faster and smaller."""
    image = Image.fromarray(render_indices(scene, size), "P")
    image.putpalette(PALETTE_RGB.ravel().tolist())
    return image
