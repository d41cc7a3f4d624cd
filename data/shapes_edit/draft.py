"""What a category generator returns: the source scene, the instruction, the operations and the CoT wording."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from data.shapes_edit.edits import EditOp
from data.shapes_edit.scene import Scene, Shape


@dataclass
class Draft:
    scene: Scene
    instruction: str
    ops: list[EditOp]
    task: str  # triplet: the edit in a few words
    target: str  # triplet: the shapes it acts on, resolved
    ability: str  # triplet: the understanding ability needed to find them
    thinking: str  # Step 2 of the Meta-CoT: how the instruction resolves to the targets
    keep: list[Shape] = field(default_factory=list)  # shapes the instruction involves that must stay (Keep lines)


# A category generator: a draft for this random stream, or None when the scene it drew does not suit the category.
Maker = Callable[[random.Random], "Draft | None"]


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
