"""The ten direct categories: one meta-task on a shape named by its attributes, or one camera motion."""

from __future__ import annotations

import random

from data.shapes_edit.draft import Draft, Maker, capitalised
from data.shapes_edit.edits import Add, Delete, Move, Pan, Replace, Rotate, Zoom, apply_camera
from data.shapes_edit.language import box_text, cell_phrase, describe, located, referring_expression
from data.shapes_edit.scene import (COLOURS, SHAPES, SIZE_WORDS, Scene, cell_centre, random_scene,
                                    random_shape)

# Boxes in the [0, 1000) convention of data/boxes.py: the far borders are 999 (only x0, y0 place the zoom).
QUADRANTS = {"top-left": (0, 0, 500, 500), "top-right": (500, 0, 999, 500),
             "bottom-left": (0, 500, 500, 999), "bottom-right": (500, 500, 999, 999)}


def _others(scene: Scene, n_changed: int = 1) -> str:
    kept = len(scene.shapes) - n_changed
    return f"The other {kept} shape{'s' if kept != 1 else ''} and the {scene.background} background stay as they are."


def add_object(rng: random.Random) -> Draft:
    scene = random_scene(rng, 2, 7)
    row, col = rng.choice(scene.empty_cells())
    new = random_shape(rng, row, col)
    where = cell_phrase(row, col)
    instruction = rng.choice([f"Add a {describe(new)} in {where}.", f"Draw a {describe(new)} in {where}.",
                              f"Put a {describe(new)} in the empty cell at {where}."])
    thinking = (f"Cells are counted from the top-left. {capitalised(where)} is empty; its centre is at "
                f"({new.x}, {new.y}), so the new {describe(new)} fills the box {box_text(new.box)}. "
                + _others(scene, 0))
    return Draft(scene, instruction, [Add(new)], "add one shape", f"a {describe(new)} in {where}",
                 "spatial grounding of a grid cell", thinking)


def remove_object(rng: random.Random) -> Draft:
    scene = random_scene(rng)
    target = rng.choice(scene.shapes)
    ref = referring_expression(target, scene)
    instruction = rng.choice([f"Remove {ref}.", f"Delete {ref} from the picture.", f"Erase {ref}."])
    thinking = (f"{capitalised(ref)} is {located(target)}. Only it is removed, leaving background there. "
                + _others(scene))
    return Draft(scene, instruction, [Delete(target)], "remove one shape", located(target), "object recognition",
                 thinking)


def recolor_object(rng: random.Random) -> Draft:
    scene = random_scene(rng)
    target = rng.choice(scene.shapes)
    colour = rng.choice([c for c in COLOURS if c != target.colour])
    ref = referring_expression(target, scene)
    instruction = rng.choice([f"Make {ref} {colour}.", f"Paint {ref} {colour}.",
                              f"Change the colour of {ref} to {colour}."])
    thinking = (f"{capitalised(ref)} is {located(target)}. Its shape, size and place stay; only the colour "
                f"changes from {target.colour} to {colour}. {_others(scene)}")
    return Draft(scene, instruction, [Replace(target, target.replace(colour=colour))], "change one shape's colour",
                 located(target), "attribute recognition", thinking)


def reshape_object(rng: random.Random) -> Draft:
    scene = random_scene(rng)
    target = rng.choice(scene.shapes)
    shape = rng.choice([s for s in SHAPES if s != target.shape])
    ref = referring_expression(target, scene)
    instruction = rng.choice([f"Turn {ref} into a {shape}.", f"Change {ref} into a {shape} of the same colour.",
                              f"Replace the shape of {ref} with a {shape}."])
    thinking = (f"{capitalised(ref)} is {located(target)}. It becomes a {shape}, keeping its colour "
                f"({target.colour}), size and place. {_others(scene)}")
    return Draft(scene, instruction, [Replace(target, target.replace(shape=shape, rotation=0))],
                 "change one shape's form", located(target), "shape recognition", thinking)


def resize_object(rng: random.Random) -> Draft:
    scene = random_scene(rng)
    target = rng.choice(scene.shapes)
    size = rng.choice([s for s in SIZE_WORDS if s != target.size])
    ref = referring_expression(target, scene)
    word = SIZE_WORDS[size]
    instruction = rng.choice([f"Make {ref} {word}.", f"Resize {ref} to {word}.",
                              f"Make {ref} {'bigger' if size > target.size else 'smaller'}: {word}."])
    thinking = (f"{capitalised(ref)} is {located(target)} and is {SIZE_WORDS[target.size]}. It becomes {word} "
                f"around the same centre. {_others(scene)}")
    return Draft(scene, instruction, [Replace(target, target.replace(size=size))], "change one shape's size",
                 located(target), "size recognition", thinking)


def replace_object(rng: random.Random) -> Draft:
    scene = random_scene(rng)
    target = rng.choice(scene.shapes)
    new = target.replace(shape=rng.choice([s for s in SHAPES if s != target.shape]),
                         colour=rng.choice([c for c in COLOURS if c != target.colour]),
                         size=rng.choice(list(SIZE_WORDS)), rotation=0)
    ref = referring_expression(target, scene)
    instruction = rng.choice([f"Replace {ref} with a {describe(new)}.", f"Swap out {ref} for a {describe(new)}."])
    thinking = f"{capitalised(ref)} is {located(target)}. A {describe(new)} takes its place. {_others(scene)}"
    return Draft(scene, instruction, [Replace(target, new)], "replace one shape by another", located(target),
                 "object recognition", thinking)


def move_object(rng: random.Random) -> Draft:
    scene = random_scene(rng)
    target = rng.choice(scene.shapes)
    row, col = rng.choice(scene.empty_cells())
    x, y = cell_centre(row, col)
    ref = referring_expression(target, scene)
    where = cell_phrase(row, col)
    instruction = rng.choice([f"Move {ref} to {where}.", f"Put {ref} in {where} instead.",
                              f"Shift {ref} into the empty cell at {where}."])
    thinking = (f"{capitalised(ref)} is {located(target)}. {capitalised(where)} is empty, centred at ({x}, {y}); "
                f"the shape moves there unchanged. {_others(scene)}")
    return Draft(scene, instruction, [Move(target, x, y)], "move one shape", located(target),
                 "spatial grounding of a grid cell", thinking)


def camera_rotate(rng: random.Random) -> Draft:
    scene = random_scene(rng)
    degrees = rng.choice([90, 180, 270])
    words = {90: "90 degrees clockwise", 180: "180 degrees", 270: "90 degrees counter-clockwise"}[degrees]
    instruction = rng.choice([f"Rotate the whole picture {words}.", f"Turn the view {words}."])
    thinking = (f"The camera turns {words}, which is {degrees} degrees clockwise: a point (x, y) goes to "
                f"(1000 - y, x) per quarter turn, so every shape changes cell, and triangles and stars turn with it.")
    return Draft(scene, instruction, [Rotate(degrees)], "rotate the view", "the whole scene",
                 "geometric transformation of the scene", thinking)


def camera_pan(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 4, 9)
    direction, cells = rng.choice(["left", "right", "up", "down"]), rng.choice([1, 1, 2])
    pan = Pan(direction, cells)
    if not apply_camera(scene, pan).shapes:
        return None
    unit = "cell" if cells == 1 else "cells"
    instruction = rng.choice([
        f"Pan the camera {direction} by {cells} grid {unit}; shapes that leave the frame are cut.",
        f"Move the view {direction} by {cells * 25}% of the image, dropping shapes that leave it."])
    thinking = (f"Panning {direction} by {cells} {unit} ({cells * 250} units) shifts every shape the other way by "
                f"{cells * 250}; shapes pushed past the edge leave the frame and the uncovered cells are empty.")
    return Draft(scene, instruction, [pan], "pan the view", "the whole scene", "geometric transformation of the scene",
                 thinking)


def camera_zoom(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 4, 10)
    name, box = rng.choice(list(QUADRANTS.items()))
    inside = [s for s in scene.shapes if box[0] < s.x < box[2] and box[1] < s.y < box[3]]
    if not inside:
        return None
    instruction = rng.choice([f"Zoom in 2x on the {name} quadrant.", f"Zoom the camera in on the {name} quarter "
                              "of the picture so it fills the frame."])
    thinking = (f"The {name} quadrant is the box {box_text(box)}; it holds {len(inside)} shape"
                f"{'s' if len(inside) != 1 else ''}. A 2x zoom maps (x, y) to (2 (x - {box[0]}), 2 (y - {box[1]})) "
                f"and doubles every size; shapes outside the quadrant leave the frame.")
    return Draft(scene, instruction, [Zoom(box)], "zoom into a quadrant", f"the {name} quadrant {box_text(box)}",
                 "geometric transformation of the scene", thinking)


BASIC: dict[str, Maker] = {
    "add_object": add_object, "remove_object": remove_object, "recolor_object": recolor_object,
    "reshape_object": reshape_object, "resize_object": resize_object, "replace_object": replace_object,
    "move_object": move_object, "camera_rotate": camera_rotate, "camera_pan": camera_pan, "camera_zoom": camera_zoom,
}
