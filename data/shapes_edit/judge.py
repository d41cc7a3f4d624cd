"""The exact ShapesEdit judge: recover the scene an image shows and compare it with what the edit should give.

An edit is a set of *facts* read off the source and target scene graphs: shapes that must appear (new, changed or
moved ones, as they are in the target), shapes that must vanish (deleted ones, and the old versions of changed or
moved ones) and shapes that must stay. Scores, each 0-10:

- instruction: share of appear / vanish facts the result satisfies. A vanish fact is credited only in proportion to
  how much of the expected scene is there, r = (matched unchanged + matched appearing shapes) / (their number), r = 1
  when the expected scene has no shapes: a shape is only "removed" from a picture that is otherwise the right one,
  so a blank image, noise or an unrelated scene gets nothing for the shapes it lacks. The credit is further scaled
  by how cleanly it went: the share of the pixels it covered whose colour class is the expected scene's (up to a
  pixel or two at edges), the background's or another colour than the shape's own (a smudge or a blurred remnant
  of the shape, too faint to be read as a shape, is not a removal);
- preservation: share of unchanged shapes (plus the background) kept, counting every extra shape away from the
  edited places as one more thing that should not be there (``preservation_raw``), times instruction / 10;
- quality: share of pixels within ``CLEAN_DISTANCE`` (RGB) of the recovered scene re-rendered, so 1.0 for a clean
  render and lower for blur, noise and drawing outside the world (``quality_raw``), times instruction / 10;
- cot_consistency: the instruction check, anchored the same way, against the scene the CoT's target lines execute to
  (the model's own CoT when given, else the reference), so it measures whether the image does what the CoT says;
- overall = sqrt(min(instruction, preservation) * quality), VIEScore's combination of its semantic and perceptual
  scores;
- cot_correct (only with the model's own CoT): 10 when its target lines execute to exactly the target scene, else 0.

Why preservation and quality are scaled by the instruction score: without it, doing nothing (the source: perfect
preservation and quality) and drawing nothing (a blank image: every pixel explained) would beat a real but imperfect
edit on those dimensions, and a policy trained against the judge could learn them. Scaled, every degenerate output
(blank, noise, the source, the source blurred, another sample's target) scores 0 on every dimension (see
``baselines.py`` and tests/test_shapes_judge.py); the unscaled values stay in the result as ``*_raw``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from data.metacot import MetaCoT, MetaCoTParseError, parse_metacot
from data.shapes_edit.edits import EditError, apply_ops, cot_to_ops
from data.shapes_edit.language import box_text, describe
from data.shapes_edit.recover import classify_pixels, recover_pixels, square_image
from data.shapes_edit.render import PALETTE_INDEX, pixel_box, render_array, render_indices, shape_mask
from data.shapes_edit.scene import BACKGROUNDS, LATTICE, Scene, Shape

POSITION_TOLERANCE = LATTICE // 2  # a shape drawn less than half a lattice step off still counts as in place
SIZE_TOLERANCE = 0.2  # relative; the world's sizes differ by at least a third
EDGE_TOLERANCE = 1 / 128  # of the side: how far a resampled or compressed edge may stray from the rendered one
# Removal credit rises from 0 to 1 as the clean share of a vanished shape's pixels goes from 0.25 to 0.75: degraded
# ground truths (JPEG, blur, resampling, small shifts) measured >= 0.81, blurred remnants mostly <= 0.35.
CLEAN_RAMP = (0.25, 0.75)
CLEAN_DISTANCE = 48.0  # RGB distance within which a pixel counts as the world's clean colour (JPEG, +-20 noise pass)


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
    satisfied: float = 0.0
    total: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, ok: bool, note: str, credit: float = 1.0) -> None:
        """One fact; a satisfied one counts ``credit`` (0..1), and any shortfall is explained by ``note``."""
        self.total += 1
        self.satisfied += credit if ok else 0.0
        if not ok or credit < 1.0:
            self.notes.append(note)

    def tally(self) -> str:
        return f"{self.satisfied:g}/{self.total}" if self.satisfied == int(self.satisfied) \
            else f"{self.satisfied:.2f}/{self.total}"

    def score(self) -> float:
        return 10.0 * self.satisfied / self.total if self.total else 0.0


def _take_match(wanted: Shape, found: list[Shape], used: set[int]) -> bool:
    candidates = [i for i, s in enumerate(found) if i not in used and same_shape(s, wanted)]
    if not candidates:
        return False
    used.add(min(candidates, key=lambda i: abs(found[i].x - wanted.x) + abs(found[i].y - wanted.y)))
    return True


Cleanliness = Callable[[Shape], float]  # share of a vanished shape's pixels that look as the expected scene does


def check_edit(facts: Facts, result: Scene, used: set[int] | None = None,
               cleanly_gone: Cleanliness | None = None) -> FactCheck:
    """Appear / vanish facts the result satisfies, vanish facts credited by the share r of the expected scene that is
    there times ``cleanly_gone(shape)`` (module docstring). ``used`` holds result shapes already matched to unchanged
    shapes (``score_scenes`` matches them first, for preservation); without it they are matched here."""
    if used is None:
        used = set()
        kept = sum(_take_match(s, result.shapes, used) for s in facts.unchanged)
    else:
        kept = len(used)
    check = FactCheck()
    appeared = 0
    for s in facts.appear:
        ok = _take_match(s, result.shapes, used)
        appeared += ok
        check.add(ok, f"missing {_name(s)}")
    expected = len(facts.unchanged) + len(facts.appear)
    present = (kept + appeared) / expected if expected else float(not result.shapes)
    for s in facts.vanish:
        clean = 1.0 if cleanly_gone is None else cleanly_gone(s)
        check.add(not any(same_shape(r, s) for r in result.shapes),
                  f"still there {_name(s)}" if clean == 1.0 or present < 1.0
                  else f"{_name(s)} gone but only {clean:.0%} of its pixels are clean", credit=present * clean)
    if facts.vanish and present < 1.0:
        check.notes.append(f"removals credited at most {present:.2f} each: only that share of the expected scene "
                           "is there")
    return check


def box_cleanliness(classes: np.ndarray, expected: Scene) -> Cleanliness:
    """For a shape: removal credit (``CLEAN_RAMP``) from the share of the pixels it covered whose palette class
    (``classify_pixels``: blends taken to their nearer end) is the expected scene's there (within ``EDGE_TOLERANCE``
    of the image side), the background, or another shape colour than its own: a removal whose place is empty or
    holds something else is clean; a smudge or blurred remnant of the shape itself is not."""
    side = classes.shape[0]
    k = max(1, round(side * EDGE_TOLERANCE))
    padded = np.pad(render_indices(expected, side), k, mode="edge")
    close = classes == PALETTE_INDEX[expected.background]
    for dy in range(2 * k + 1):
        for dx in range(2 * k + 1):
            close |= classes == padded[dy:dy + side, dx:dx + side]
    shape_colour = classes >= len(BACKGROUNDS)

    def cleanly_gone(shape: Shape) -> float:
        x0, y0, x1, y1 = pixel_box(shape, side, side)
        if x1 <= x0 or y1 <= y0:
            return 1.0
        mask = shape_mask(shape.shape, shape.rotation, x1 - x0, y1 - y0)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, side), min(y1, side)
        inside = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        own = classes[cy0:cy1, cx0:cx1] == PALETTE_INDEX[shape.colour]
        clean = close[cy0:cy1, cx0:cx1] | (shape_colour[cy0:cy1, cx0:cx1] & ~own)
        share = float(clean[inside].mean()) if inside.any() else 1.0
        return min(1.0, max(0.0, (share - CLEAN_RAMP[0]) / (CLEAN_RAMP[1] - CLEAN_RAMP[0])))

    return cleanly_gone


def score_scenes(source: Scene, target: Scene, result: Scene,
                 cleanly_gone: Cleanliness | None = None) -> tuple[FactCheck, FactCheck]:
    """(instruction, raw preservation) checks of a result scene."""
    facts = Facts.between(source, target)
    used: set[int] = set()
    preservation = FactCheck()
    for s in facts.unchanged:  # unchanged shapes claim their matches first, then the edited ones
        preservation.add(_take_match(s, result.shapes, used), f"lost {_name(s)}")
    instruction = check_edit(facts, result, used, cleanly_gone)
    preservation.add(result.background == target.background,
                     f"background is {result.background}, should be {target.background}")
    edited = facts.appear + facts.vanish
    for i, r in enumerate(result.shapes):
        if i not in used and not any(_near(r, e) for e in edited):
            preservation.add(False, f"extra {_name(r)}")
    return instruction, preservation


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel RGB distance of (H, W, 3) float arrays (b may be one colour)."""
    return np.sqrt(((a - b) ** 2).sum(-1))


def clean_fraction(pixels: np.ndarray, scene: Scene) -> float:
    """Share of pixels within ``CLEAN_DISTANCE`` of the scene re-rendered at the image's size: 1.0 for a clean
    render; blurred edges, noise and colours outside the world lower it."""
    rendered = render_array(scene, pixels.shape[0]).astype(np.float32)
    return float((_distance(pixels.astype(np.float32), rendered) <= CLEAN_DISTANCE).mean())


def cot_consistency(cot: MetaCoT, source: Scene, result: Scene,
                    classes: np.ndarray | None = None) -> tuple[FactCheck, Scene | None]:
    """Fact check of the result (and its palette ``classes``, for how cleanly shapes went) against the scene the CoT's target
    lines execute to; unusable lines count as failed."""
    ops, errors = cot_to_ops(cot, source)
    try:
        implied = apply_ops(source, ops)
    except EditError as e:
        implied, errors = None, errors + [str(e)]
    if implied is None:
        check = FactCheck()
    else:
        cleanly_gone = None if classes is None else box_cleanliness(classes, implied)
        check = check_edit(Facts.between(source, implied), result, cleanly_gone=cleanly_gone)
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
    instruction, preservation = score_scenes(source, target, result, box_cleanliness(classes, target))
    gate = instruction.score() / 10.0
    quality_raw = 10.0 * clean_fraction(pixels, result)
    cot, cot_source, cot_error = _reference_cot(reference, cot_text)
    if cot is None:
        consistency, implied = FactCheck(0, 1, [cot_error]), None
    else:
        consistency, implied = cot_consistency(cot, source, result, classes)
    scores = {"instruction": instruction.score(), "preservation": preservation.score() * gate,
              "quality": quality_raw * gate, "cot_consistency": consistency.score()}
    scores["overall"] = math.sqrt(min(scores["instruction"], scores["preservation"]) * scores["quality"])
    explanation = " | ".join([
        f"instruction {instruction.tally()}" + _notes(instruction),
        f"preservation {preservation.tally()}" + _notes(preservation),
        f"quality: {quality_raw * 10:.1f}% of pixels are the clean render of the recovered scene of "
        f"{len(result.shapes)} shapes" + (f", worst shape fit {min(recovery.fits):.2f} IoU" if recovery.fits else ""),
        f"preservation and quality scaled by instruction / 10 = {gate:.2f}",
        f"CoT ({cot_source}) {consistency.tally()}" + _notes(consistency),
    ])
    if cot_source == "model":  # does the model's own plan execute to exactly the target scene?
        scores["cot_correct"] = 10.0 * (implied == target)
    return {
        **{k: round(v, 3) for k, v in scores.items()},
        "preservation_raw": round(preservation.score(), 3),
        "quality_raw": round(quality_raw, 3),
        "cot_matches_target": implied == target,
        "explanation": explanation,
        "recovered_scene": result.to_dict(),
    }


def _notes(check: FactCheck) -> str:
    return (": " + "; ".join(check.notes)) if check.notes else ""
