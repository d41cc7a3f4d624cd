"""Understanding samples: questions about a scene whose answers the scene graph gives exactly."""

from __future__ import annotations

import random
from collections.abc import Callable

from data.shapes_edit.language import box_text, cell_phrase, describe, plural, referring_expression
from data.shapes_edit.scene import COLOURS, GRID, SHAPES, Scene

QUESTIONS_PER_SAMPLE = 3
QA = tuple[str, str]


def _count_kind(rng: random.Random, scene: Scene) -> QA:
    kind = rng.choice(SHAPES)
    return f"How many {plural(kind)} are in the picture?", str(sum(s.shape == kind for s in scene.shapes))


def _count_colour(rng: random.Random, scene: Scene) -> QA:
    colour = rng.choice(list(COLOURS))
    return f"How many {colour} shapes are there?", str(sum(s.colour == colour for s in scene.shapes))


def _count_all(rng: random.Random, scene: Scene) -> QA:
    return "How many shapes are there in total?", str(len(scene.shapes))


def _cell_content(rng: random.Random, scene: Scene) -> QA:
    if rng.random() < 0.75:
        row, col = rng.choice(scene.shapes).cell
    else:
        row, col = rng.randrange(GRID), rng.randrange(GRID)
    shape = scene.at_cell(row, col)
    answer = f"A {describe(shape)}." if shape else "Nothing; that cell is empty."
    return f"What is in {cell_phrase(row, col)} (rows from the top, columns from the left)?", answer


def _relative_position(rng: random.Random, scene: Scene) -> QA | None:
    a, b = rng.sample(list(scene.shapes), 2)
    ref_a, ref_b = referring_expression(a, scene), referring_expression(b, scene)
    if a.x != b.x and (a.y == b.y or rng.random() < 0.5):
        return f"Is {ref_a} to the left of {ref_b}?", "Yes." if a.x < b.x else "No."
    if a.y != b.y:
        return f"Is {ref_a} above {ref_b}?", "Yes." if a.y < b.y else "No."
    return None


def _largest(rng: random.Random, scene: Scene) -> QA | None:
    biggest = max(s.size for s in scene.shapes)
    found = [s for s in scene.shapes if s.size == biggest]
    return ("Which shape is the largest?", f"The {describe(found[0])} in {cell_phrase(*found[0].cell)}.") \
        if len(found) == 1 else None


def _ground_one(rng: random.Random, scene: Scene) -> QA:
    shape = rng.choice(scene.shapes)
    return (f"Give the bounding box of {referring_expression(shape, scene)} as [x0, y0, x1, y1] in 0-1000 "
            "coordinates.", box_text(shape.box))


def _list_all(rng: random.Random, scene: Scene) -> QA:
    items = "; ".join(f"{describe(s)} {box_text(s.box)}" for s in scene.shapes)
    return "List every shape from top to bottom, left to right, with its bounding box.", items + "."


def _background(rng: random.Random, scene: Scene) -> QA:
    return "What colour is the background?", scene.background.capitalize() + "."


QUESTION_MAKERS: dict[str, Callable[[random.Random, Scene], QA | None]] = {
    "count_kind": _count_kind, "count_colour": _count_colour, "count_all": _count_all, "cell_content": _cell_content,
    "relative_position": _relative_position, "largest": _largest, "ground_one": _ground_one, "list_all": _list_all,
    "background": _background,
}


def make_conversation(scene: Scene, key: str) -> list[dict]:
    """``QUESTIONS_PER_SAMPLE`` question/answer turns about a scene (with at least two shapes), from a seed key."""
    if len(scene.shapes) < 2:
        raise ValueError("understanding questions need a scene with at least two shapes")
    rng = random.Random(f"shapes_edit/understanding/{key}")
    conversation = []
    for name in rng.sample(list(QUESTION_MAKERS), len(QUESTION_MAKERS)):
        qa = QUESTION_MAKERS[name](rng, scene)
        if qa is not None:
            conversation += [{"role": "user", "text": qa[0]}, {"role": "assistant", "text": qa[1]}]
        if len(conversation) == 2 * QUESTIONS_PER_SAMPLE:
            break
    return conversation

