"""Edit operations on scenes, and their two-way mapping to Meta-CoT target lines.

Every task's target scene is produced by applying its operations, and every operation is written into the CoT as a
target line in a small fixed grammar; ``step_to_op`` reads such a line back (also from a model's own CoT) and
resolves it against the source scene. So the ground-truth CoT executes to exactly the target scene, and the judge
can execute any CoT to check whether an image carries out what the CoT says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from data.metacot import KEEP, MetaCoT, TargetStep
from data.shapes_edit.language import box_text, describe
from data.shapes_edit.scene import CANVAS, CELL, COLOURS, SHAPES, SIZE_WORDS, Scene, Shape

ZOOM_FACTOR = 2
PAN_SHIFT = {"left": (1, 0), "right": (-1, 0), "up": (0, 1), "down": (0, -1)}  # camera direction -> shape shift
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


class EditError(ValueError):
    """An operation that does not apply to the scene, or a target line that does not parse."""


@dataclass(frozen=True)
class Delete:
    target: Shape


@dataclass(frozen=True)
class Replace:
    target: Shape
    new: Shape  # same centre as target


@dataclass(frozen=True)
class Move:
    target: Shape
    x: int
    y: int


@dataclass(frozen=True)
class Add:
    new: Shape


@dataclass(frozen=True)
class Rotate:
    degrees: int  # clockwise, 90 / 180 / 270


@dataclass(frozen=True)
class Pan:
    direction: str  # where the camera moves; the shapes shift the other way
    cells: int


@dataclass(frozen=True)
class Zoom:
    box: tuple[int, int, int, int]  # a 500 x 500 region that fills the frame after a 2x zoom


EditOp = Delete | Replace | Move | Add | Rotate | Pan | Zoom
CAMERA_OPS = (Rotate, Pan, Zoom)
META_TASK = {Delete: "Deletion", Replace: "Replacement", Move: "Position Change", Add: "Addition",
             Rotate: "Camera Motion", Pan: "Camera Motion", Zoom: "Camera Motion"}


def apply_camera(scene: Scene, op: Rotate | Pan | Zoom) -> Scene:
    shapes = list(scene.shapes)
    if isinstance(op, Rotate):
        for _ in range(op.degrees // 90 % 4):
            shapes = [s.replace(x=CANVAS - s.y, y=s.x, rotation=s.rotation + 90) for s in shapes]
    elif isinstance(op, Pan):
        dx, dy = (CELL * op.cells * d for d in PAN_SHIFT[op.direction])
        shifted = [(s.x + dx, s.y + dy, s) for s in shapes]
        shapes = [s.replace(x=x, y=y) for x, y, s in shifted if 0 < x < CANVAS and 0 < y < CANVAS]
    else:
        x0, y0, x1, y1 = op.box
        shapes = [s.replace(x=(s.x - x0) * ZOOM_FACTOR, y=(s.y - y0) * ZOOM_FACTOR, size=s.size * ZOOM_FACTOR)
                  for s in shapes if x0 < s.x < x1 and y0 < s.y < y1]
    return scene.with_shapes(shapes)


def apply_ops(scene: Scene, ops: list[EditOp]) -> Scene:
    """All object edits at once (so swaps work), then the camera motions in order."""
    removed, added = set(), []
    for op in ops:
        target = getattr(op, "target", None)
        if target is not None:
            if target not in scene.shapes:
                raise EditError(f"{describe(target)} at {box_text(target.box)} is not in the scene")
            removed.add(target)
        if isinstance(op, (Replace, Add)):
            added.append(op.new)
        elif isinstance(op, Move):
            added.append(op.target.replace(x=op.x, y=op.y))
    result = scene.with_shapes([s for s in scene.shapes if s not in removed] + added)
    for op in ops:
        if isinstance(op, CAMERA_OPS):
            result = apply_camera(result, op)
    return result


def _replace_text(old: Shape, new: Shape) -> str:
    changed = [a for a in ("colour", "shape", "size") if getattr(old, a) != getattr(new, a)]
    if changed == ["colour"]:
        verb = f"recolour it from {old.colour} to {new.colour}"
    elif changed == ["shape"]:
        verb = f"reshape it from a {old.shape} into a {new.shape}"
    elif changed == ["size"]:
        verb = f"resize it from {SIZE_WORDS[old.size]} to {SIZE_WORDS[new.size]}"
    else:
        verb = "replace it"
    return f"{verb}, making it a {describe(new)}"


def keep_step(shape: Shape) -> TargetStep:
    """The traversal line of a shape the instruction involves (a reference, a compared one) that stays as it is."""
    return TargetStep(describe(shape), KEEP, "keep it unchanged", shape.box)


def op_to_step(op: EditOp) -> TargetStep:
    meta = META_TASK[type(op)]
    if isinstance(op, Delete):
        return TargetStep(describe(op.target), meta, "remove it", op.target.box)
    if isinstance(op, Replace):
        return TargetStep(describe(op.target), meta, _replace_text(op.target, op.new), op.target.box)
    if isinstance(op, Move):
        return TargetStep(describe(op.target), meta, f"move it to {box_text(op.target.replace(x=op.x, y=op.y).box)}",
                          op.target.box)
    if isinstance(op, Add):
        return TargetStep(f"new {describe(op.new)}", meta, f"add a {describe(op.new)} here", op.new.box)
    if isinstance(op, Rotate):
        return TargetStep("the whole scene", meta, f"rotate the view {op.degrees} degrees clockwise")
    if isinstance(op, Pan):
        unit = "cell" if op.cells == 1 else "cells"
        return TargetStep("the whole scene", meta, f"pan the camera {op.direction} by {op.cells} {unit}, so every "
                          f"shape shifts {OPPOSITE[op.direction]} and shapes leaving the frame are cut")
    return TargetStep("the region to zoom into", meta, f"zoom in {ZOOM_FACTOR}x so this region fills the frame", op.box)


_SIZE = "|".join(w for w in SIZE_WORDS.values())
_TRIPLE = re.compile(rf"\b(?:({_SIZE})\s+)?({'|'.join(COLOURS)})\s+({'|'.join(SHAPES)})\b", re.I)
_BOX = re.compile(r"\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")
_ROTATE = re.compile(r"rotate\b.*?\b(90|180|270)\s*degrees\s*(counter-?clockwise|anti-?clockwise|clockwise)?", re.I)
_PAN = re.compile(r"pan\b.*?\b(left|right|up|down)\b.*?\b(\d+)\s*cells?", re.I)
_ZOOM = re.compile(r"zoom\s+in\s+(\d+)\s*x", re.I)
_SIZE_OF = {w: s for s, w in SIZE_WORDS.items()}


def _box_iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def _find_target(step: TargetStep, scene: Scene) -> Shape:
    """The shape the line's box points at (IoU >= 0.5), else the only shape its description fits."""
    if step.box is not None and scene.shapes:
        best = max(scene.shapes, key=lambda s: _box_iou(s.box, step.box))
        if _box_iou(best.box, step.box) >= 0.5:
            return best
    m = _TRIPLE.search(step.target)
    if m:
        size, colour, shape = m.group(1), m.group(2).lower(), m.group(3).lower()
        fits = [s for s in scene.shapes if s.colour == colour and s.shape == shape
                and (size is None or s.size == _SIZE_OF[size.lower()])]
        if len(fits) == 1:
            return fits[0]
    raise EditError(f"no single shape matches target {step.target!r} {step.box}")


def _last_triple(text: str) -> tuple[int | None, str, str]:
    found = _TRIPLE.findall(text)
    if not found:
        raise EditError(f"no '<size> <colour> <shape>' in {text!r}")
    size, colour, shape = found[-1]
    return (_SIZE_OF[size.lower()] if size else None), colour.lower(), shape.lower()


def step_to_op(step: TargetStep, scene: Scene) -> EditOp:
    """Resolve one target line against the source scene; raises ``EditError`` when it cannot be executed."""
    if step.meta_task == "Camera Motion":
        text = step.operation
        if m := _ROTATE.search(text):
            degrees = int(m.group(1))
            return Rotate(degrees if not (m.group(2) or "").lower().startswith(("counter", "anti")) else 360 - degrees)
        if m := _PAN.search(text):
            return Pan(m.group(1).lower(), int(m.group(2)))
        if (m := _ZOOM.search(text)) and int(m.group(1)) == ZOOM_FACTOR and step.box is not None:
            return Zoom(tuple(step.box))
        raise EditError(f"camera operation {text!r} is not a 90/180/270-degree rotation, a pan by cells or a 2x zoom")
    if step.meta_task == "Addition":
        if step.box is None:
            raise EditError(f"addition {step.target!r} has no box saying where to add")
        size, colour, shape = _last_triple(f"{step.target} {step.operation}")
        x0, y0, x1, y1 = step.box
        return Add(Shape(y=(y0 + y1) // 2, x=(x0 + x1) // 2, shape=shape, colour=colour,
                         size=size or max(x1 - x0, y1 - y0)))
    target = _find_target(step, scene)
    if step.meta_task == "Deletion":
        return Delete(target)
    if step.meta_task == "Replacement":
        size, colour, shape = _last_triple(step.operation)
        return Replace(target, target.replace(shape=shape, colour=colour, size=size or target.size, rotation=0))
    m = _BOX.search(step.operation)
    if m is None:
        raise EditError(f"position change {step.operation!r} names no destination box [x0, y0, x1, y1]")
    x0, y0, x1, y1 = (int(v) for v in m.groups())
    return Move(target, (x0 + x1) // 2, (y0 + y1) // 2)


def cot_to_ops(cot: MetaCoT, scene: Scene) -> tuple[list[EditOp], list[str]]:
    """The executable operations of a CoT's target lines, and one error message per line that is not. Keep lines
    give no operation; they must name a shape of the scene that no other line changes."""
    ops, errors, kept = [], [], []
    for step in cot.traversal:
        try:
            if step.keeps:
                kept.append((step, _find_target(step, scene)))
            else:
                ops.append(step_to_op(step, scene))
        except EditError as e:
            errors.append(f"line '{step.target} | {step.meta_task}': {e}")
    changed = {op.target for op in ops if hasattr(op, "target")}
    errors += [f"line '{step.target} | {KEEP}': another line changes {describe(shape)} {box_text(shape.box)}"
               for step, shape in kept if shape in changed]
    return ops, errors
