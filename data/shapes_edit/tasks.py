"""The 21 ShapesEdit categories and the assembly of one edit sample: scenes, instruction and ground-truth Meta-CoT."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from data.metacot import MetaCoT
from data.shapes_edit.categories_basic import BASIC
from data.shapes_edit.categories_reasoning import REASONING
from data.shapes_edit.draft import Maker, capitalised
from data.shapes_edit.edits import CAMERA_OPS, META_TASK, EditOp, apply_ops, keep_step, op_to_step
from data.shapes_edit.language import join_list
from data.shapes_edit.scene import Scene

CATEGORIES: dict[str, Maker] = {**BASIC, **REASONING}
MAX_TRIES = 500  # a category rejects unsuitable random scenes; all of them accept well within this


@dataclass
class EditSample:
    id: str
    category: str
    source: Scene
    target: Scene
    instruction: str
    cot: MetaCoT


def summarize(ops: list[EditOp], scene: Scene) -> str:
    """Step 1's sentence after the meta-task list: what changes and what must stay."""
    if any(isinstance(op, CAMERA_OPS) for op in ops):
        return "The camera moves; every shape keeps its colour and kind and moves with the view."
    verbs = {"Addition": "add", "Deletion": "remove", "Replacement": "change", "Position Change": "move"}
    counts = Counter(META_TASK[type(op)] for op in ops)
    parts = [f"{verbs[m]} {n} shape{'s' if n != 1 else ''}" for m, n in counts.items()]
    touched = {op.target for op in ops if hasattr(op, "target")}
    kept = len(scene.shapes) - len(touched)
    return f"{capitalised(join_list(parts))}; keep the other {kept} shape{'s' if kept != 1 else ''} and the background."


def make_edit_sample(category: str, key: str, sample_id: str | None = None) -> EditSample:
    """The sample of ``category`` that the random stream named by ``key`` yields (same key, same sample)."""
    maker = CATEGORIES.get(category)
    if maker is None:
        raise ValueError(f"unknown ShapesEdit category {category!r}; expected one of {', '.join(CATEGORIES)}")
    rng = random.Random(f"shapes_edit/{category}/{key}")
    for _ in range(MAX_TRIES):
        draft = maker(rng)
        if draft is not None:
            break
    else:
        raise RuntimeError(f"category {category!r} found no suitable scene in {MAX_TRIES} tries (key {key!r})")
    meta_tasks = list(dict.fromkeys(META_TASK[type(op)] for op in draft.ops))
    cot = MetaCoT(task=draft.task, target=draft.target, ability=draft.ability, meta_tasks=meta_tasks,
                  summary=summarize(draft.ops, draft.scene), task_thinking=draft.thinking,
                  traversal=[op_to_step(op) for op in draft.ops] + [keep_step(s) for s in draft.keep])
    return EditSample(sample_id or f"{category}-{key}", category, draft.scene, apply_ops(draft.scene, draft.ops),
                      draft.instruction, cot)
