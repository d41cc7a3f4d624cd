"""The 21 categories of the Meta-CoT 21-Tasks-Bench, in report order, and the spellings mapped onto them.

The paper: 11 categories from GEdit-Bench, 4 from RISEBench, a multi-instruction category from Complex-Edit and 5
new ones. The first 16 are those benchmarks' own task names (GEdit's ``task_type``, RISEBench's categories). The 5 new
names are OUR BEST READING, UNVERIFIED: the release that names them was not public when this was written. They
follow the two meta-tasks GEdit lacks (Camera Motion, Position Change) and the task families the project page shows
(count change, object rotation, open/close). A release that spells them otherwise is mapped with ``ALIASES`` or
converted with ``--category-map`` (scripts/bench_data/convert_21tasks.py); unknown names stop the conversion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class TaskCategory:
    name: str
    source: str  # "GEdit-Bench" | "RISEBench" | "Complex-Edit" | "new (unverified name)"


GEDIT = ("background_change", "color_alter", "material_alter", "motion_change", "ps_human", "style_change",
         "subject-add", "subject-remove", "subject-replace", "text_change", "tone_transfer")
RISE = ("temporal_reasoning", "causal_reasoning", "spatial_reasoning", "logical_reasoning")
COMPLEX_EDIT = ("multi_instruction",)
NEW_UNVERIFIED = ("camera_motion", "position_change", "count_change", "object_rotation", "open_close")

CATEGORIES: tuple[TaskCategory, ...] = (
    *(TaskCategory(n, "GEdit-Bench") for n in GEDIT),
    *(TaskCategory(n, "RISEBench") for n in RISE),
    *(TaskCategory(n, "Complex-Edit") for n in COMPLEX_EDIT),
    *(TaskCategory(n, "new (unverified name)") for n in NEW_UNVERIFIED),
)
CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)

# other spellings -> our name (case, spaces, '-' and '_' are ignored when matching, see ``_key``)
ALIASES: dict[str, str] = {
    **{short: f"{short}_reasoning" for short in ("temporal", "causal", "spatial", "logical")},
    "complex_edit": "multi_instruction", "complex": "multi_instruction", "multi_instruction_execution":
        "multi_instruction", "compound": "multi_instruction",
    "camera_view_change": "camera_motion", "camera_view": "camera_motion", "viewpoint_change": "camera_motion",
    "camera_move": "camera_motion", "camera_movement": "camera_motion",
    "position_movement": "position_change", "move_object": "position_change", "object_move": "position_change",
    "count": "count_change", "number_change": "count_change", "quantity_change": "count_change",
    "rotate": "object_rotation", "rotation": "object_rotation", "rotate_object": "object_rotation",
    "open": "open_close", "open_or_close": "open_close", "open/close": "open_close",
}


class CategoryMismatch(ValueError):
    """A benchmark's categories are not the fixed list; the message names the unknown and missing ones."""


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_LOOKUP: dict[str, str] = {**{_key(a): n for a, n in ALIASES.items()}, **{_key(n): n for n in CATEGORY_NAMES}}


def canonical_category(name: str, extra_map: dict[str, str] | None = None) -> str | None:
    """Our name for ``name`` (an exact name, another spelling, or a key of ``extra_map``); None if unknown."""
    if extra_map and name in extra_map:
        return extra_map[name]
    return _LOOKUP.get(_key(name))


def category_renames(found: Iterable[str], extra_map: dict[str, str] | None = None) -> dict[str, str]:
    """Each name as found -> our name (unknown names map to themselves, for ``check_categories`` to report)."""
    return {name: canonical_category(name, extra_map) or name for name in found}


def check_categories(found: Iterable[str], expected: tuple[str, ...] = CATEGORY_NAMES,
                     allow_extra: bool = False) -> None:
    """Raise ``CategoryMismatch`` when a fixed category is missing or (unless ``allow_extra``) one is unknown."""
    found = set(found)
    missing = [c for c in expected if c not in found]
    unknown = sorted(found - set(expected)) if not allow_extra else []
    if missing or unknown:
        parts = ([f"unknown {unknown} (accept them with --allow-extra-categories, or map them with "
                  "--category-map NAME=OURS when converting)"] if unknown else []) + \
                ([f"missing {missing}"] if missing else [])
        raise CategoryMismatch(f"categories differ from the fixed list of {len(expected)}: " + "; ".join(parts))
