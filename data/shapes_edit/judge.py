"""The exact ShapesEdit judge: recover the scene an image shows and compare it with what the edit should give.

An edit is a set of *facts* read off the source and target scene graphs: shapes that must appear (new, changed or
moved ones, as they are in the target), shapes that must vanish (deleted ones, and the old versions of changed or
moved ones) and shapes that must stay. Scores, each 0-10:

- instruction: share of appear / vanish facts the result image satisfies;
- preservation: share of unchanged shapes (plus the background) kept, counting every extra shape away from the
  edited places as one more thing that should not be there;
- quality: share of pixels the recovered scene explains when re-rendered (1.0 for a clean render; blur, noise and
  drawing outside the world lower it);
- cot_consistency: the same fact check against the scene the CoT's target lines execute to (the model's own CoT
  when given, else the reference), so it measures whether the image does what the CoT says;
- overall = sqrt(min(instruction, preservation) * quality), VIEScore's combination of its semantic and perceptual
  scores.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from PIL import Image

from data.metacot import MetaCoT, MetaCoTParseError, parse_metacot
from data.shapes_edit.edits import EditError, apply_ops, cot_to_ops
from data.shapes_edit.language import box_text, describe
from data.shapes_edit.recover import classify_pixels, explained_fraction, recover_pixels, square_image
from data.shapes_edit.scene import LATTICE, Scene, Shape

POSITION_TOLERANCE = LATTICE // 2  # a shape drawn less than half a lattice step off still counts as in place
SIZE_TOLERANCE = 0.2  # relative; the world's sizes differ by at least a third


def same_shape(found: Shape, wanted: Shape) -> bool:
    return (found.shape == wanted.shape and found.colour == wanted.colour and found.rotation == wanted.rotation
            and abs(found.x - wanted.x) <= POSITION_TOLERANCE and abs(found.y - wanted.y) <= POSITION_TOLERANCE
            and abs(found.size - wanted.size) <= SIZE_TOLERANCE * wanted.size)


def _near(a: Shape, b: Shape) -> bool:
    return abs(a.x - b.x) <= POSITION_TOLERANCE and abs(a.y - b.y) <= POSITION_TOLERANCE


def _name(s: Shape) -> str:
    turn = f" turned {s.rotation}" if s.rotation else ""
    return f"{describe(s)}{turn} {box_text(s.box)}"


@dataclass
class Facts:
    appear: list[Shape]
    vanish: list[Shape]
    unchanged: list[Shape]

    @classmethod
    def between(cls, source: Scene, target: Scene) -> "Facts":
        src, tgt = Counter(source.shapes), Counter(target.shapes)
        return cls(list((tgt - src).elements()), list((src - tgt).elements()), list((src & tgt).elements()))


@dataclass
class FactCheck:
    satisfied: int = 0
    total: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, ok: bool, note: str) -> None:
        self.total += 1
        self.satisfied += ok
        if not ok:
            self.notes.append(note)

    def score(self) -> float:
        return 10.0 * self.satisfied / self.total if self.total else 0.0


def _take_match(wanted: Shape, found: list[Shape], used: set[int]) -> bool:
    candidates = [i for i, s in enumerate(found) if i not in used and same_shape(s, wanted)]
    if not candidates:
        return False
    used.add(min(candidates, key=lambda i: abs(found[i].x - wanted.x) + abs(found[i].y - wanted.y)))
    return True


def check_edit(facts: Facts, result: Scene, used: set[int] | None = None) -> FactCheck:
    """How many appear / vanish facts the result satisfies; ``used`` collects the result shapes matched."""
    used = set() if used is None else used
    check = FactCheck()
    for s in facts.appear:
        check.add(_take_match(s, result.shapes, used), f"missing {_name(s)}")
    for s in facts.vanish:
        check.add(not any(same_shape(r, s) for r in result.shapes), f"still there {_name(s)}")
    return check


def score_scenes(source: Scene, target: Scene, result: Scene) -> tuple[FactCheck, FactCheck]:
    """(instruction, preservation) checks of a result scene."""
    facts = Facts.between(source, target)
    used: set[int] = set()
    preservation = FactCheck()
    for s in facts.unchanged:  # unchanged shapes claim their matches first, then the edited ones
        preservation.add(_take_match(s, result.shapes, used), f"lost {_name(s)}")
    instruction = check_edit(facts, result, used)
    preservation.add(result.background == target.background,
                     f"background is {result.background}, should be {target.background}")
    edited = facts.appear + facts.vanish
    for i, r in enumerate(result.shapes):
        if i not in used and not any(_near(r, e) for e in edited):
            preservation.add(False, f"extra {_name(r)}")
    return instruction, preservation


def cot_consistency(cot: MetaCoT, source: Scene, result: Scene) -> tuple[FactCheck, Scene | None]:
    """Fact check of the result against the scene the CoT's target lines execute to; unusable lines count as failed."""
    ops, errors = cot_to_ops(cot, source)
    try:
        implied = apply_ops(source, ops)
    except EditError as e:
        implied, errors = None, errors + [str(e)]
    check = check_edit(Facts.between(source, implied), result) if implied is not None else FactCheck()
    for error in errors:
        check.add(False, f"CoT {error}")
    if check.total == 0:
        check.add(False, "the CoT's target lines change nothing")
    return check, implied


def _reference_cot(reference: dict, cot_text: str | None) -> tuple[MetaCoT | None, str, str | None]:
    if cot_text is None:
        return MetaCoT.from_dict(reference["cot"]), "reference", None
    try:
        return parse_metacot(cot_text), "model", None
    except MetaCoTParseError as e:
        return None, "model", f"CoT does not parse: {e}"


def score_edit(reference: dict, result_image: Image.Image, cot_text: str | None = None) -> dict:
    """Scores (0-10) of an edited image against a benchmark reference (``source_scene``, ``target_scene``, ``cot``).

    ``cot_text`` is the model's own thinking; without it the CoT consistency is checked against the reference CoT.
    """
    missing = [k for k in ("source_scene", "target_scene", "cot") if k not in reference]
    if missing:
        raise ValueError(f"reference lacks {missing}; the exact judge needs a ShapesEdit benchmark reference "
                         "(write one with data.shapes_edit.export.write_benchmark)")
    source, target = Scene.from_dict(reference["source_scene"]), Scene.from_dict(reference["target_scene"])
    pixels = square_image(result_image)
    classes = classify_pixels(pixels)
    recovery = recover_pixels(pixels, classes)
    result = recovery.scene
    instruction, preservation = score_scenes(source, target, result)
    quality = 10.0 * explained_fraction(classes, result)
    cot, cot_source, cot_error = _reference_cot(reference, cot_text)
    if cot is None:
        consistency, implied = FactCheck(0, 1, [cot_error]), None
    else:
        consistency, implied = cot_consistency(cot, source, result)
    overall = math.sqrt(min(instruction.score(), preservation.score()) * quality)
    explanation = " | ".join([
        f"instruction {instruction.satisfied}/{instruction.total}" + _notes(instruction),
        f"preservation {preservation.satisfied}/{preservation.total}" + _notes(preservation),
        f"quality: {quality * 10:.1f}% of pixels explained by the recovered scene of {len(result.shapes)} shapes"
        + (f", worst shape fit {min(recovery.fits):.2f} IoU" if recovery.fits else ""),
        f"CoT ({cot_source}) {consistency.satisfied}/{consistency.total}" + _notes(consistency),
    ])
    return {
        "instruction": round(instruction.score(), 3),
        "preservation": round(preservation.score(), 3),
        "quality": round(quality, 3),
        "cot_consistency": round(consistency.score(), 3),
        "overall": round(overall, 3),
        "cot_matches_target": implied == target,
        "explanation": explanation,
        "recovered_scene": result.to_dict(),
    }


def _notes(check: FactCheck) -> str:
    return (": " + "; ".join(check.notes)) if check.notes else ""
