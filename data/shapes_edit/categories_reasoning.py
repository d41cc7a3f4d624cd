"""The eleven reasoning categories: the targets must be found by comparing, counting, relating or deducing."""

from __future__ import annotations

import random
from collections import Counter

from data.shapes_edit.draft import Draft, Maker, capitalised
from data.shapes_edit.edits import Add, Delete, Move, Replace
from data.shapes_edit.language import (cell_phrase, count_noun, describe, join_list, located, plural,
                                       referring_expression, size_word)
from data.shapes_edit.scene import COLOURS, GRID, SHAPES, Scene, Shape, cell_centre, random_scene

# direction word -> (row step, column step, phrase for "the cell directly ... it", line it is searched along)
DIRECTIONS = {"left": (0, -1, "to the left of", "row"), "right": (0, 1, "to the right of", "row"),
              "up": (-1, 0, "above", "column"), "down": (1, 0, "below", "column")}


def _neighbour_cell(shape: Shape, direction: str) -> tuple[int, int] | None:
    dr, dc, _, _ = DIRECTIONS[direction]
    row, col = shape.cell[0] + dr, shape.cell[1] + dc
    return (row, col) if 0 <= row < GRID and 0 <= col < GRID else None


def _extreme(shapes: list[Shape], largest: bool) -> Shape | None:
    """The single largest (or smallest) shape, None on a tie."""
    best = max(s.size for s in shapes) if largest else min(s.size for s in shapes)
    found = [s for s in shapes if s.size == best]
    return found[0] if len(found) == 1 else None


def _anchor_phrase(rng: random.Random, anchor: Shape, scene: Scene) -> str:
    """'the largest red shape' when that picks the anchor out of at least two of its colour, else its plain name."""
    same = [s for s in scene.shapes if s.colour == anchor.colour]
    for largest in rng.sample([True, False], 2):
        if len(same) >= 2 and _extreme(same, largest) == anchor:
            return f"the {'largest' if largest else 'smallest'} {anchor.colour} shape"
    return referring_expression(anchor, scene)


def spatial_remove(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 5, 10)
    anchor, direction = rng.choice(scene.shapes), rng.choice(list(DIRECTIONS))
    dr, dc, phrase, line = DIRECTIONS[direction]
    row, col = anchor.cell
    ahead = [s for s in scene.shapes if (s.cell[0] - row) * dr + (s.cell[1] - col) * dc > 0
             and (s.cell[0] == row if line == "row" else s.cell[1] == col)]
    if not ahead:
        return None
    target = min(ahead, key=lambda s: abs(s.cell[0] - row) + abs(s.cell[1] - col))
    anchor_ref = _anchor_phrase(rng, anchor, scene)
    instruction = f"Remove the closest shape {phrase} {anchor_ref}, in the same {line}."
    thinking = (f"{capitalised(anchor_ref)} is {located(anchor)}. Going {direction} along {line} "
                f"{(row if line == 'row' else col) + 1}, the first shape met is {located(target)}, so it is removed.")
    return Draft(scene, instruction, [Delete(target)], "remove a shape found by its position", located(target),
                 "spatial reasoning", thinking, keep=[anchor])


def superlative_recolor(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 4, 9)
    kind = rng.choice([None, *SHAPES])
    pool = [s for s in scene.shapes if kind is None or s.shape == kind]
    largest = rng.random() < 0.5
    if len(pool) < 2 or (target := _extreme(pool, largest)) is None:
        return None
    colour = rng.choice([c for c in COLOURS if c != target.colour])
    word, noun = ("largest" if largest else "smallest"), (kind or "shape")
    instruction = rng.choice([f"Paint the {word} {noun} {colour}.", f"Make the {word} {noun} {colour}."])
    sizes = join_list([f"{located(s)} is {size_word(s.size)}" for s in pool])
    thinking = f"Comparing the {plural(noun)}: {sizes}. Only {located(target)} is the {word}; it becomes {colour}."
    return Draft(scene, instruction, [Replace(target, target.replace(colour=colour))], "recolour the extreme shape",
                 located(target), "size comparison", thinking, keep=[s for s in pool if s != target])


def count_balance(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 5, 10)
    counts = Counter(s.shape for s in scene.shapes)
    pairs = [(a, b) for a in counts for b in counts if counts[a] > counts[b]]
    if not pairs:
        return None
    many, few = rng.choice(pairs)
    surplus = counts[many] - counts[few]
    ordered = sorted((s for s in scene.shapes if s.shape == many), key=lambda s: -s.x)
    if surplus < len(ordered) and ordered[surplus - 1].x == ordered[surplus].x:
        return None  # "rightmost first" would not decide between two shapes in one column
    removed = ordered[:surplus]
    instruction = (f"Remove {plural(many)}, rightmost first, until there are as many {plural(many)} as "
                   f"{plural(few)}.")
    thinking = (f"There are {count_noun(counts[many], many)} and {count_noun(counts[few], few)}, so "
                f"{count_noun(surplus, many)} must go. From the right: {join_list([located(s) for s in removed])}.")
    return Draft(scene, instruction, [Delete(s) for s in removed], f"equalise the counts of {plural(many)} and "
                 f"{plural(few)}", join_list([located(s) for s in removed]), "counting", thinking,
                 keep=ordered[surplus:])


def swap_objects(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 4, 9)
    by_size = sorted(scene.shapes, key=lambda s: s.size)
    largest = rng.random() < 0.5
    pair = by_size[-2:] if largest else by_size[:2]
    rest = by_size[:-2] if largest else by_size[2:]
    if rng.random() < 0.5:
        if any(s.size == pair[0 if largest else 1].size for s in rest):
            return None  # "the two largest" must not tie with a third shape
        names = f"the two {'largest' if largest else 'smallest'} shapes"
        ability = "size comparison"
    else:
        pair = rng.sample(list(scene.shapes), 2)
        names = f"{referring_expression(pair[0], scene)} and {referring_expression(pair[1], scene)}"
        ability = "object recognition"
    a, b = pair
    if (a.shape, a.colour, a.size) == (b.shape, b.colour, b.size):
        return None  # swapping two look-alikes changes nothing
    instruction = rng.choice([f"Swap the positions of {names}.", f"Exchange the places of {names}."])
    thinking = (f"{capitalised(names)} are {located(a)} and {located(b)}. Each moves to the other's cell, "
                f"keeping its own colour, shape and size.")
    return Draft(scene, instruction, [Move(a, b.x, b.y), Move(b, a.x, a.y)], "swap two shapes",
                 f"{located(a)} and {located(b)}", ability, thinking)


def remove_colour_group(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 5, 10)
    counts = Counter(s.colour for s in scene.shapes)
    colours = [c for c, n in counts.items() if n >= 2]
    if not colours:
        return None
    colour = rng.choice(colours)
    targets = [s for s in scene.shapes if s.colour == colour]
    instruction = rng.choice([f"Remove every {colour} shape.", f"Delete all the {colour} shapes."])
    every = "both" if len(targets) == 2 else f"all {len(targets)}"
    thinking = f"The {colour} shapes are {join_list([located(s) for s in targets])}; {every} are removed."
    return Draft(scene, instruction, [Delete(s) for s in targets], f"remove all {colour} shapes",
                 join_list([located(s) for s in targets]), "colour recognition", thinking)


def recolor_shape_group(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 5, 10)
    counts = Counter(s.shape for s in scene.shapes)
    kinds = [k for k, n in counts.items() if n >= 2]
    if not kinds:
        return None
    kind, colour = rng.choice(kinds), rng.choice(list(COLOURS))
    group = [s for s in scene.shapes if s.shape == kind]
    targets = [s for s in group if s.colour != colour]
    if not targets:
        return None
    instruction = rng.choice([f"Make every {kind} {colour}.", f"Paint all the {plural(kind)} {colour}."])
    kept = [s for s in group if s.colour == colour]
    thinking = (f"The {plural(kind)} are {join_list([located(s) for s in group])}. "
                + (f"{capitalised(join_list([located(s) for s in kept]))} {'is' if len(kept) == 1 else 'are'} already "
                   f"{colour}; " if kept else "")
                + f"{count_noun(len(targets), kind)} {'changes' if len(targets) == 1 else 'change'} colour "
                f"to {colour}.")
    return Draft(scene, instruction, [Replace(s, s.replace(colour=colour)) for s in targets],
                 f"recolour every {kind}", join_list([located(s) for s in targets]), "shape recognition", thinking,
                 keep=kept)


def duplicate_object(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 3, 8)
    target, direction = rng.choice(scene.shapes), rng.choice(list(DIRECTIONS))
    cell = _neighbour_cell(target, direction)
    if cell is None or scene.at_cell(*cell) is not None:
        return None
    x, y = cell_centre(*cell)
    copy = target.replace(x=x, y=y)
    ref, phrase = referring_expression(target, scene), DIRECTIONS[direction][2]
    instruction = f"Add a copy of {ref} in the cell directly {phrase} it."
    thinking = (f"{capitalised(ref)} is {located(target)}. The cell {phrase} it is {cell_phrase(*cell)}, which is "
                f"empty, so an identical {describe(target)} goes there.")
    return Draft(scene, instruction, [Add(copy)], "duplicate a shape", f"a {describe(copy)} in {cell_phrase(*cell)}",
                 "spatial reasoning", thinking, keep=[target])


def odd_one_out(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 5, 9)
    attribute = rng.choice(["colour", "shape"])
    values = list(COLOURS) if attribute == "colour" else list(SHAPES)
    odd_value, *common = rng.sample(values, rng.randint(2, 1 + (len(scene.shapes) - 1) // 2))
    # every common value twice, the remaining shapes any common value, the odd value exactly once
    assigned = [odd_value] + [v for v in common for _ in range(2)]
    assigned += [rng.choice(common) for _ in range(len(scene.shapes) - len(assigned))]
    rng.shuffle(assigned)
    scene = scene.with_shapes([s.replace(**{attribute: v, "rotation": 0}) for s, v in zip(scene.shapes, assigned)])
    target = next(s for s in scene.shapes if getattr(s, attribute) == odd_value)
    tally = Counter(getattr(s, attribute) for s in scene.shapes)
    if attribute == "colour":
        instruction = "Exactly one shape has a colour that no other shape has. Remove it."
        tally_text = join_list([f"{n} {v}" for v, n in sorted(tally.items())])
    else:
        instruction = "Exactly one shape is the only one of its kind (circle, square, ...). Remove it."
        tally_text = join_list([count_noun(n, v) for v, n in sorted(tally.items())])
    thinking = (f"Counting by {attribute}: {tally_text}. Only {odd_value} occurs once: {located(target)}, "
                "which is removed.")
    return Draft(scene, instruction, [Delete(target)], "remove the odd one out", located(target), "logical reasoning",
                 thinking)


def relational_move(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 3, 8)
    mover, anchor = rng.sample(list(scene.shapes), 2)
    direction = rng.choice(list(DIRECTIONS))
    cell = _neighbour_cell(anchor, direction)
    if cell is None or scene.at_cell(*cell) is not None:
        return None
    x, y = cell_centre(*cell)
    mover_ref, anchor_ref, phrase = referring_expression(mover, scene), referring_expression(anchor, scene), \
        DIRECTIONS[direction][2]
    instruction = f"Move {mover_ref} to the cell directly {phrase} {anchor_ref}."
    thinking = (f"{capitalised(anchor_ref)} is {located(anchor)}, so the cell {phrase} it is {cell_phrase(*cell)}, "
                f"which is empty. {capitalised(mover_ref)} ({located(mover)}) moves there unchanged.")
    return Draft(scene, instruction, [Move(mover, x, y)], "move a shape next to another", located(mover),
                 "spatial reasoning", thinking, keep=[anchor])


def conditional_recolor(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 5, 10)
    counts = Counter(s.colour for s in scene.shapes)
    present = list(counts)
    if len(present) < 2:
        return None
    first, second = rng.sample(present, 2)
    if counts[first] == counts[second]:
        return None
    old, new = (second, first) if counts[first] > counts[second] else (first, second)
    targets = [s for s in scene.shapes if s.colour == old]
    instruction = (f"If there are more {first} shapes than {second} shapes, make all {second} shapes {first}; "
                   f"otherwise make all {first} shapes {second}.")
    verdict = "more" if counts[first] > counts[second] else "fewer"
    thinking = (f"There are {counts[first]} {first} and {counts[second]} {second} shapes: {verdict} {first}, so the "
                f"{old} shapes ({join_list([located(s) for s in targets])}) become {new}.")
    return Draft(scene, instruction, [Replace(s, s.replace(colour=new)) for s in targets],
                 f"recolour the {old} shapes {new}", join_list([located(s) for s in targets]),
                 "counting and logical reasoning", thinking, keep=[s for s in scene.shapes if s.colour == new])


def multi_edit(rng: random.Random) -> Draft | None:
    scene = random_scene(rng, 4, 9)
    first, second = rng.sample(list(scene.shapes), 2)
    empty = scene.empty_cells()
    ops, clauses = [], []
    for shape, kind in ((first, rng.choice(["remove", "recolour", "move"])),
                        (second, rng.choice(["remove", "recolour", "reshape"]))):
        ref = referring_expression(shape, scene)
        if kind == "remove":
            ops.append(Delete(shape))
            clauses.append(f"remove {ref}")
        elif kind == "recolour":
            colour = rng.choice([c for c in COLOURS if c != shape.colour])
            ops.append(Replace(shape, shape.replace(colour=colour)))
            clauses.append(f"make {ref} {colour}")
        elif kind == "reshape":
            form = rng.choice([k for k in SHAPES if k != shape.shape])
            ops.append(Replace(shape, shape.replace(shape=form, rotation=0)))
            clauses.append(f"turn {ref} into a {form}")
        else:
            row, col = rng.choice(empty)
            ops.append(Move(shape, *cell_centre(row, col)))
            clauses.append(f"move {ref} to {cell_phrase(row, col)}")
    instruction = capitalised(f"{clauses[0]}, then {clauses[1]}.")
    thinking = (f"Two independent edits. First: {clauses[0]}, which is {located(first)}. Second: {clauses[1]}, "
                f"which is {located(second)}. Nothing else changes.")
    return Draft(scene, instruction, ops, "two edits in one instruction", f"{located(first)} and {located(second)}",
                 "multi-instruction following", thinking)


REASONING: dict[str, Maker] = {
    "spatial_remove": spatial_remove, "superlative_recolor": superlative_recolor, "count_balance": count_balance,
    "swap_objects": swap_objects, "remove_colour_group": remove_colour_group,
    "recolor_shape_group": recolor_shape_group, "duplicate_object": duplicate_object, "odd_one_out": odd_one_out,
    "relational_move": relational_move, "conditional_recolor": conditional_recolor, "multi_edit": multi_edit,
}
