"""Imperfect edits of a ShapesEdit sample: the mistakes an editing model makes, made on purpose.

Each variant turns a sample's source scene into a result scene (or says it does not apply to the sample):

- ``correct``: the target itself;
- ``nothing``: the source, unchanged;
- ``wrong_object``: one operation applied to another, untouched shape;
- ``wrong_attribute``: one operation with a wrong value (colour, form, size, or destination cell);
- ``partial``: a multi-operation edit with one operation left out;
- ``over_edit``: the right edit plus an unasked change to an untouched shape (removed or recoloured);
- ``wrong_angle``: a view rotation by another angle.

Every result keeps the world's rule of one shape per grid cell. ``correction`` is set where the object-level scene
difference would not say what to do (camera motions); otherwise ``data.shapes_edit.corrections`` derives it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from data.shapes_edit.edits import Add, Delete, EditOp, Move, Replace, Rotate, apply_ops
from data.shapes_edit.scene import COLOURS, SHAPES, SIZE_WORDS, Scene, Shape, cell_centre

VARIANTS: tuple[str, ...] = ("correct", "nothing", "wrong_object", "wrong_attribute", "partial", "over_edit",
                             "wrong_angle")
ATTRIBUTE_CHOICES = {"colour": tuple(COLOURS), "shape": SHAPES, "size": tuple(SIZE_WORDS)}


@dataclass
class Imperfect:
    variant: str
    result: Scene
    correction: list[EditOp] | None = None  # None: derive from the scenes


def _valid(scene: Scene) -> bool:
    cells = [s.cell for s in scene.shapes]
    return len(cells) == len(set(cells))


def _targets(ops: list[EditOp]) -> set[Shape]:
    return {op.target for op in ops if hasattr(op, "target")}


def _untouched(scene: Scene, ops: list[EditOp]) -> list[Shape]:
    return [s for s in scene.shapes if s not in _targets(ops)]


def _changed(op: Replace) -> dict:
    return {a: getattr(op.new, a) for a in ATTRIBUTE_CHOICES if getattr(op.new, a) != getattr(op.target, a)}


def _apply(scene: Scene, ops: list[EditOp]) -> Scene | None:
    result = apply_ops(scene, ops)
    return result if _valid(result) else None


def _on_other(op: EditOp, other: Shape) -> EditOp | None:
    """The same operation aimed at ``other``."""
    if isinstance(op, Delete):
        return Delete(other)
    if isinstance(op, Move):
        return Move(other, op.x, op.y)
    if isinstance(op, Replace):
        changes = _changed(op)
        if len(changes) == len(ATTRIBUTE_CHOICES):  # a whole replacement: the new shape goes to the other's place
            new = op.new.replace(x=other.x, y=other.y)
        else:
            new = other.replace(**changes, **({"rotation": 0} if "shape" in changes else {}))
        return Replace(other, new) if new != other else None
    return None


def _wrong_value(op: EditOp, scene: Scene, rng: random.Random) -> EditOp | None:
    if isinstance(op, Replace) and (changes := _changed(op)):
        attribute = rng.choice(sorted(changes))
        taken = (getattr(op.target, attribute), changes[attribute])
        wrong = [v for v in ATTRIBUTE_CHOICES[attribute] if v not in taken]
        return Replace(op.target, op.new.replace(**{attribute: rng.choice(wrong)})) if wrong else None
    if isinstance(op, Add):
        return Add(op.new.replace(colour=rng.choice([c for c in COLOURS if c != op.new.colour])))
    if isinstance(op, Move):
        free = [cell_centre(r, c) for r, c in scene.empty_cells() if cell_centre(r, c) != (op.x, op.y)]
        return Move(op.target, *rng.choice(free)) if free else None
    return None


def make_imperfect(variant: str, source: Scene, target: Scene, ops: list[EditOp],
                   rng: random.Random) -> Imperfect | None:
    """The ``variant`` of the edit ``ops`` (which take ``source`` to ``target``), or None where it does not apply."""
    if variant == "correct":
        return Imperfect(variant, target, [])
    if variant == "nothing":
        return Imperfect(variant, source, list(ops))
    if variant == "wrong_angle":
        if len(ops) != 1 or not isinstance(ops[0], Rotate):
            return None
        wrong = rng.choice([d for d in (90, 180, 270) if d != ops[0].degrees])
        return Imperfect(variant, apply_ops(source, [Rotate(wrong)]), [Rotate((ops[0].degrees - wrong) % 360)])
    if any(not isinstance(op, (Delete, Replace, Move, Add)) for op in ops):
        return None  # the remaining variants change objects; camera motions only get the ones above
    result = None
    if variant == "wrong_object":
        others = _untouched(source, ops)
        aimed = [i for i, op in enumerate(ops) if hasattr(op, "target")]
        if others and aimed:
            i, other = rng.choice(aimed), rng.choice(others)
            swapped = _on_other(ops[i], other)
            result = swapped and _apply(source, ops[:i] + [swapped] + ops[i + 1:])
    elif variant == "wrong_attribute":
        i = rng.randrange(len(ops))
        wrong = _wrong_value(ops[i], source, rng)
        result = wrong and _apply(source, ops[:i] + [wrong] + ops[i + 1:])
    elif variant == "partial" and len(ops) >= 2:
        i = rng.randrange(len(ops))
        result = _apply(source, ops[:i] + ops[i + 1:])
    elif variant == "over_edit" and (others := _untouched(source, ops)):
        other = rng.choice(others)
        extra = Delete(other) if rng.random() < 0.5 else Replace(
            other, other.replace(colour=rng.choice([c for c in COLOURS if c != other.colour])))
        result = _apply(source, list(ops) + [extra])
    return Imperfect(variant, result) if result is not None and result != target else None
