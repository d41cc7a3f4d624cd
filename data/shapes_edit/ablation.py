"""The seen / unseen category split and the rows of the Meta-CoT ablation in the ShapesEdit world.

The paper claims that SFT on the five meta-tasks generalises to editing tasks never trained on. Here the *seen*
categories are the ten direct ones (each meta-task applied to a named shape, and the camera motions) plus six
reasoning categories; the five *unseen* ones each combine a meta-task seen in training with a way of finding the
target that only other categories or the understanding data exercise:

- count_balance: Deletion chosen by counting (counting is asked in the understanding data);
- conditional_recolor: Replacement decided by comparing two counts (understanding counts, superlative_recolor's
  comparison);
- odd_one_out: Deletion of the one shape whose colour or kind is unique (counting by attribute);
- relational_move: Position Change to a cell next to a reference shape (the neighbour search of spatial_remove);
- duplicate_object: Addition of a copy next to a shape (add_object's Addition, spatial_remove's neighbour search).

So an unseen category asks for no meta-task and no perception the model has not met, only a new combination,
which is what the claim is about. The seen reasoning categories keep one of each ability in training (spatial,
size comparison, group selection by colour / kind, swaps, two edits at once).

Every row trains on the same number of samples (understanding questions mixed in as the paper does) for the same
number of steps; ``ROWS`` below lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from data.shapes_edit.categories_basic import BASIC
from data.shapes_edit.categories_reasoning import REASONING

DIRECT: tuple[str, ...] = tuple(BASIC)
UNSEEN: tuple[str, ...] = ("count_balance", "conditional_recolor", "odd_one_out", "relational_move",
                           "duplicate_object")
SEEN: tuple[str, ...] = DIRECT + tuple(c for c in REASONING if c not in UNSEEN)
ALL: tuple[str, ...] = tuple(BASIC) + tuple(REASONING)
# Addition, Deletion and Replacement only: add, remove, and the four kinds of replacement
THREE_META_TASKS: tuple[str, ...] = ("add_object", "remove_object", "recolor_object", "reshape_object",
                                     "resize_object", "replace_object")


@dataclass(frozen=True)
class DataVariant:
    """One generated training set: its categories and whether its Meta-CoTs keep Step 2."""

    name: str
    categories: tuple[str, ...]
    drop_task_thinking: bool = False


@dataclass(frozen=True)
class AblationRow:
    name: str
    label: str  # as the table shows it
    data: DataVariant
    with_cot: bool  # trains on edit_cot rows (Meta-CoT) and is evaluated thinking; else plain edits, no thinking


VARIANTS = {v.name: v for v in (
    DataVariant("seen", SEEN), DataVariant("seen_no_thinking", SEEN, drop_task_thinking=True),
    DataVariant("three_meta_tasks", THREE_META_TASKS), DataVariant("direct", DIRECT), DataVariant("all", ALL))}

ROWS: tuple[AblationRow, ...] = (
    AblationRow("edit_only", "Edit-only SFT (no CoT), seen categories", VARIANTS["seen"], with_cot=False),
    AblationRow("meta_cot_3_tasks", "Meta-CoT SFT, 3 meta-tasks (add / remove / replace categories)",
                VARIANTS["three_meta_tasks"], with_cot=True),
    AblationRow("meta_cot_direct", "Meta-CoT SFT, the 5 meta-tasks' direct categories only",
                VARIANTS["direct"], with_cot=True),
    AblationRow("meta_cot_full", "Meta-CoT SFT (full), seen categories", VARIANTS["seen"], with_cot=True),
    AblationRow("meta_cot_no_thinking", "Meta-CoT SFT without the task-thinking step, seen categories",
                VARIANTS["seen_no_thinking"], with_cot=True),
    AblationRow("meta_cot_all", "Meta-CoT SFT on all 21 categories (nothing unseen: upper bound)",
                VARIANTS["all"], with_cot=True),
)
ROWS_BY_NAME = {r.name: r for r in ROWS}
RL_ROW_NOTE = ("Meta-CoT SFT + Flow-GRPO (exact CoT-consistency reward): not run; it needs the Flow-GRPO trainer "
               "(its own issue)")


def unseen_for(row: AblationRow) -> tuple[str, ...]:
    """Categories the row never trained on (scored separately as 'unseen')."""
    return tuple(c for c in ALL if c not in row.data.categories)
