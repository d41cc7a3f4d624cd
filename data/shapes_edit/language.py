"""Words for shapes, cells and boxes, and the shortest description that picks one shape out of a scene."""

from __future__ import annotations

from data.shapes_edit.scene import SIZE_WORDS, Scene, Shape


def size_word(size: int) -> str:
    return SIZE_WORDS.get(size, f"size-{size}")


def describe(shape: Shape, with_size: bool = True) -> str:
    """'small red circle' (no article)."""
    words = [size_word(shape.size)] if with_size else []
    return " ".join(words + [shape.colour, shape.shape])


def cell_phrase(row: int, col: int) -> str:
    return f"row {row + 1}, column {col + 1}"


def box_text(box: tuple[int, int, int, int]) -> str:
    return "[" + ", ".join(str(v) for v in box) + "]"


def plural(word: str) -> str:
    return word + ("es" if word.endswith(("s", "x", "sh", "ch")) else "s")


def count_noun(n: int, word: str) -> str:
    """'1 star', '2 stars'."""
    return f"{n} {word if n == 1 else plural(word)}"


def referring_expression(shape: Shape, scene: Scene) -> str:
    """The shortest of 'the red circle', 'the small red circle', '... in row r, column c' that names only ``shape``."""
    others = [s for s in scene.shapes if s != shape]
    if not any(s.colour == shape.colour and s.shape == shape.shape for s in others):
        return f"the {describe(shape, with_size=False)}"
    if not any(s.colour == shape.colour and s.shape == shape.shape and s.size == shape.size for s in others):
        return f"the {describe(shape)}"
    return f"the {describe(shape)} in {cell_phrase(*shape.cell)}"


def located(shape: Shape) -> str:
    """'the small red circle in row 2, column 3', for reasoning text where the location helps the reader."""
    return f"the {describe(shape)} in {cell_phrase(*shape.cell)}"


def join_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
