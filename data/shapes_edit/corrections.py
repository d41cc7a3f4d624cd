"""What is still wrong in a ShapesEdit result: the operations that finish the edit, as a reason and an instruction.

``correction_ops(result, target)`` pairs the shapes the result lacks with the shapes it should not have (same place,
other look: a replacement; same look, other place: a move; the rest: additions and deletions), so applying them to
the result gives exactly the target. ``describe_problems`` and ``correction_instruction`` word them for a refine
verdict: the reason says what is wrong, the refined instruction what to change *in the result* (boxes in the
[0, 1000) convention, so every target is unambiguous).
"""

from __future__ import annotations

from data.boxes import normalise_box
from data.shapes_edit.draft import capitalised
from data.shapes_edit.edits import ZOOM_FACTOR, Add, Delete, EditOp, Move, Pan, Replace, Rotate, Zoom, apply_ops
from data.shapes_edit.judge import Facts
from data.shapes_edit.language import box_text, describe, size_word
from data.shapes_edit.scene import CANVAS, Scene, Shape


class CorrectionError(ValueError):
    """The result cannot be turned into the target by object edits (e.g. another background)."""


def where(shape: Shape) -> str:
    return box_text(normalise_box(shape.box, CANVAS, CANVAS))


def _looks(shape: Shape) -> str:
    turn = f" turned {shape.rotation} degrees" if shape.rotation else ""
    return describe(shape) + turn


def correction_ops(result: Scene, target: Scene) -> list[EditOp]:
    """Object operations turning ``result`` into ``target`` exactly."""
    if result.background != target.background:
        raise CorrectionError(f"the background is {result.background}, the target's is {target.background}")
    facts = Facts.between(result, target)
    extra, missing = list(facts.vanish), list(facts.appear)
    ops: list[EditOp] = []
    for want in list(missing):
        old = next((s for s in extra if (s.x, s.y) == (want.x, want.y)), None)
        if old is not None:
            ops.append(Replace(old, want))
            extra.remove(old)
            missing.remove(want)
    for want in list(missing):
        old = next((s for s in extra if s.replace(x=want.x, y=want.y) == want), None)
        if old is not None:
            ops.append(Move(old, want.x, want.y))
            extra.remove(old)
            missing.remove(want)
    ops += [Delete(s) for s in extra] + [Add(s) for s in missing]
    if apply_ops(result, ops) != target:  # a world invariant; a failure is a bug in this module
        raise CorrectionError("the correction does not reproduce the target")
    return ops


def _cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"


def _change(old: Shape, new: Shape) -> tuple[str, str]:
    """How ``old`` must change to become ``new`` (same place): the instruction and the problem, worded."""
    changed = [a for a in ("colour", "shape", "size", "rotation") if getattr(old, a) != getattr(new, a)]
    it = f"the {_looks(old)} at {where(old)}"
    if changed == ["colour"]:
        return f"make {it} {new.colour}", f"{it} should be {new.colour}"
    if changed == ["shape"]:
        return f"turn {it} into a {new.shape}", f"{it} should be a {new.shape}"
    if changed == ["size"]:
        return f"make {it} {size_word(new.size)}", f"{it} should be {size_word(new.size)}"
    return f"replace {it} with a {_looks(new)}", f"{it} should be a {_looks(new)}"


def _instruction_part(op: EditOp) -> str:
    if isinstance(op, Delete):
        return f"remove the {_looks(op.target)} at {where(op.target)}"
    if isinstance(op, Add):
        return f"add a {_looks(op.new)} at {where(op.new)}"
    if isinstance(op, Replace):
        return _change(op.target, op.new)[0]
    if isinstance(op, Move):
        return f"move the {_looks(op.target)} at {where(op.target)} to {where(op.target.replace(x=op.x, y=op.y))}"
    if isinstance(op, Rotate):
        return f"rotate the whole picture {op.degrees} degrees clockwise"
    if isinstance(op, Pan):
        return f"pan the camera {op.direction} by {_cells(op.cells)}, cutting shapes that leave the frame"
    if isinstance(op, Zoom):
        return f"zoom in {ZOOM_FACTOR}x on the region {box_text(op.box)} so it fills the frame"
    raise CorrectionError(f"{type(op).__name__} has no correction wording")


def _problem(op: EditOp) -> str:
    if isinstance(op, Delete):
        return f"the {_looks(op.target)} at {where(op.target)} should not be there"
    if isinstance(op, Add):
        return f"a {_looks(op.new)} is missing at {where(op.new)}"
    if isinstance(op, Replace):
        return _change(op.target, op.new)[1]
    if isinstance(op, Move):
        return (f"the {_looks(op.target)} should be at {where(op.target.replace(x=op.x, y=op.y))}, "
                f"not at {where(op.target)}")
    if isinstance(op, Rotate):
        return f"the view still has to turn {op.degrees} degrees clockwise"
    if isinstance(op, Pan):
        return f"the camera has not panned {op.direction} by {_cells(op.cells)} yet"
    if isinstance(op, Zoom):
        return f"the view has not zoomed in {ZOOM_FACTOR}x on {box_text(op.box)} yet"
    raise CorrectionError(f"{type(op).__name__} has no problem wording")


def correction_instruction(ops: list[EditOp]) -> str:
    """'Make the small blue square at [..] red; remove the ... .'"""
    if not ops:
        raise CorrectionError("nothing to correct")
    return capitalised("; ".join(_instruction_part(op) for op in ops)) + "."


def describe_problems(ops: list[EditOp]) -> str:
    if not ops:
        raise CorrectionError("nothing is wrong")
    return capitalised("; ".join(_problem(op) for op in ops)) + "."
