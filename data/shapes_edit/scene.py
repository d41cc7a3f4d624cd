"""The ShapesEdit scene graph: a flat background and non-overlapping shapes on a 4 x 4 grid.

Coordinates are integers in 0..1000 on both axes (the box coordinates of the Meta-CoT), independent of the pixel
size an image is rendered at. A shape is given by its centre and its ``size`` (the side of the square box it fills).
Source scenes put one shape per grid cell (centres at 125 + 250 k) with sizes 100 / 150 / 200; camera motion keeps
centres on the 125-unit lattice and sizes on multiples of 50, which is what lets the judge snap recovered shapes to
exact values.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field

CANVAS = 1000
GRID = 4
CELL = CANVAS // GRID
LATTICE = CELL // 2  # every centre any edit can produce lies on this lattice (odd multiples of 125 or zoomed ones)
SIZE_STEP = 50

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 135, 20),
    "yellow": (240, 210, 0),
    "green": (30, 160, 60),
    "blue": (30, 80, 220),
    "purple": (140, 50, 180),
    "black": (25, 25, 25),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "grey": (205, 205, 205),
    "cream": (250, 238, 205),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross", "star")
ORIENTED_SHAPES: frozenset[str] = frozenset({"triangle", "star"})  # the only ones a 90-degree turn changes
SIZE_WORDS: dict[int, str] = {100: "small", 150: "medium", 200: "large"}
ROTATIONS: tuple[int, ...] = (0, 90, 180, 270)


class SceneError(ValueError):
    """A scene or shape with values outside the world's vocabulary."""


@dataclass(frozen=True, order=True)
class Shape:
    """One shape. Field order is the canonical sort order of a scene: top to bottom, then left to right."""

    y: int
    x: int
    shape: str
    colour: str
    size: int
    rotation: int = 0  # clockwise degrees; kept 0 for shapes a quarter turn leaves unchanged

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise SceneError(f"unknown shape {self.shape!r}; expected one of {', '.join(SHAPES)}")
        if self.colour not in COLOURS:
            raise SceneError(f"unknown colour {self.colour!r}; expected one of {', '.join(COLOURS)}")
        if self.size <= 0 or not (0 <= self.x <= CANVAS and 0 <= self.y <= CANVAS):
            raise SceneError(f"shape at ({self.x}, {self.y}) size {self.size} lies outside the 0..{CANVAS} canvas")
        rotation = self.rotation % 360 if self.shape in ORIENTED_SHAPES else 0
        if rotation not in ROTATIONS:
            raise SceneError(f"rotation {self.rotation} must be a multiple of 90 degrees")
        object.__setattr__(self, "rotation", rotation)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The [x0, y0, x1, y1] box in 0..1000 coordinates (the Meta-CoT grounding box)."""
        half = self.size // 2
        return (max(0, self.x - half), max(0, self.y - half), min(CANVAS, self.x + half), min(CANVAS, self.y + half))

    @property
    def cell(self) -> tuple[int, int]:
        """(row, column) of the grid cell holding the centre, 0-based."""
        return min(GRID - 1, self.y // CELL), min(GRID - 1, self.x // CELL)

    def replace(self, **changes) -> "Shape":
        return Shape(**{**asdict(self), **changes})


@dataclass(frozen=True)
class Scene:
    background: str
    shapes: tuple[Shape, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise SceneError(f"unknown background {self.background!r}; expected one of {', '.join(BACKGROUNDS)}")
        object.__setattr__(self, "shapes", tuple(sorted(self.shapes)))

    def with_shapes(self, shapes) -> "Scene":
        return Scene(self.background, tuple(shapes))

    def at_cell(self, row: int, col: int) -> Shape | None:
        return next((s for s in self.shapes if s.cell == (row, col)), None)

    def empty_cells(self) -> list[tuple[int, int]]:
        taken = {s.cell for s in self.shapes}
        return [(r, c) for r in range(GRID) for c in range(GRID) if (r, c) not in taken]

    def to_dict(self) -> dict:
        return {"background": self.background, "shapes": [asdict(s) for s in self.shapes]}

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        try:
            return cls(d["background"], tuple(Shape(**s) for s in d["shapes"]))
        except (KeyError, TypeError) as e:
            raise SceneError(f"scene record is missing or has a bad field: {e}") from e

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def cell_centre(row: int, col: int) -> tuple[int, int]:
    """(x, y) of the centre of a grid cell."""
    return CELL * col + CELL // 2, CELL * row + CELL // 2


def random_shape(rng: random.Random, row: int, col: int) -> Shape:
    x, y = cell_centre(row, col)
    return Shape(y=y, x=x, shape=rng.choice(SHAPES), colour=rng.choice(list(COLOURS)),
                 size=rng.choice(list(SIZE_WORDS)))


def random_scene(rng: random.Random, min_shapes: int = 3, max_shapes: int = 8) -> Scene:
    """A background and ``min_shapes..max_shapes`` random shapes, one per randomly chosen grid cell."""
    n = rng.randint(min_shapes, max_shapes)
    cells = rng.sample(range(GRID * GRID), n)
    return Scene(rng.choice(list(BACKGROUNDS)), tuple(random_shape(rng, c // GRID, c % GRID) for c in cells))
