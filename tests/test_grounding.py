"""Grounded Meta-CoTs: boxes in [0, 1000) round-trip text <-> record, errors name the line, and the box IoU."""

from __future__ import annotations

import json

import pytest

from data.boxes import box_iou, box_to_pixels, normalise_box
from data.metacot import MetaCoT, MetaCoTParseError, TargetStep, parse_metacot
from data.shapes_edit.export import benchmark_samples
from data.shapes_edit.grounding import cot_box_iou, matched_iou


def grounded_cot() -> MetaCoT:
    return MetaCoT("swap two shapes", "the red circle and the blue star", "spatial grounding",
                   ["Position Change", "Replacement"], "Move one shape and recolour another.",
                   "The circle moves right; the star becomes green.",
                   [TargetStep("small red circle", "Position Change", "move it to [525, 25, 625, 125]",
                               (0, 0, 100, 100)),
                    TargetStep("large blue star", "Replacement", "recolour it green", (800, 800, 999, 999)),
                    TargetStep("the whole scene", "Camera Motion", "rotate the view 90 degrees clockwise")])


def test_cot_with_boxes_round_trips_text_and_record() -> None:
    cot = grounded_cot()
    text = cot.render()
    assert "- large blue star [800, 800, 999, 999] | Replacement | recolour it green" in text
    assert parse_metacot(text) == cot
    assert parse_metacot(text).render() == text  # text -> record -> the exact same training text
    assert MetaCoT.from_dict(json.loads(json.dumps(cot.to_dict()))) == cot
    assert [s.box for s in parse_metacot(text).traversal] == [(0, 0, 100, 100), (800, 800, 999, 999), None]


def test_every_benchmark_cot_uses_the_convention() -> None:
    for sample in benchmark_samples(per_category=2, seed=5):
        for step in sample.cot.traversal:
            assert step.box is None or all(0 <= v < 1000 for v in step.box)
        assert parse_metacot(sample.cot.render()) == sample.cot


def test_pixel_boxes_normalise_into_the_half_open_range() -> None:
    assert normalise_box((0, 0, 640, 480), 640, 480) == (0, 0, 999, 999)
    assert normalise_box((64, 48, 320, 240), 640, 480) == (100, 100, 500, 500)
    assert box_to_pixels((100, 100, 500, 500), 640, 480) == (64, 48, 320, 240)
    assert box_to_pixels((0, 0, 999, 999), 640, 480) == (0, 0, 640, 480)


@pytest.mark.parametrize("edit, message, line", [
    (("[800, 800, 999, 999]", "[800, 800, 1000, 999]"), "outside \\[0, 1000\\)", 9),
    (("[800, 800, 999, 999]", "[800, 800, 999]"), "4 integers", 9),
    (("[800, 800, 999, 999]", "[800.5, 800, 999, 999]"), "4 integers", 9),
    (("[800, 800, 999, 999]", "[900, 800, 800, 999]"), "x0 <= x1", 9),
    (("| Replacement |", "| Recolour |"), "unknown meta-task 'Recolour'", 9),
    (("- small red circle", "* small red circle"), "bad target line", 8),
    (("Step 1 - Meta-task summary: Position Change", "Step 1 - Meta-task summary: Moving"), "unknown meta-task",
     5),
    (("Target: the red circle and the blue star", "Target: "), "'target' is empty", 3),
    (("Understanding ability:", "Ability:"), "missing the line 'Understanding ability", None),
])
def test_bad_cot_names_the_line(edit: tuple[str, str], message: str, line: int | None) -> None:
    text = grounded_cot().render()
    assert edit[0] in text
    with pytest.raises(MetaCoTParseError, match=message) as info:
        parse_metacot(text.replace(edit[0], edit[1]))
    assert info.value.line == line
    if line is not None:
        assert str(info.value).startswith(f"line {line}: ")


def test_matched_iou_pairs_boxes_one_to_one() -> None:
    a, b = (0, 0, 100, 100), (500, 500, 700, 700)
    assert matched_iou([b, a], [a, b]) == 1.0  # order does not matter
    assert matched_iou([a], [a, b]) == 0.5  # a missed object counts 0
    assert matched_iou([a, b, (900, 900, 950, 950)], [a, b]) == pytest.approx(2 / 3)  # so does an extra box
    assert matched_iou([(0, 0, 50, 100)], [a]) == 0.5 == box_iou((0, 0, 50, 100), a)
    assert matched_iou([a, a], [a]) == 0.5  # one box cannot match two objects
    assert matched_iou([], [a]) == 0.0


def test_cot_box_iou_against_a_reference() -> None:
    sample = next(s for s in benchmark_samples(1, seed=2) if s.category == "remove_object")
    reference = {"cot": sample.cot.to_dict()}
    assert cot_box_iou(reference, sample.cot.render()) == 1.0
    moved = sample.cot.render().replace(str(list(sample.cot.traversal[0].box))[1:-1], "0, 0, 10, 10")
    assert cot_box_iou(reference, moved) == 0.0
    assert cot_box_iou(reference, "not a CoT") == 0.0
    assert cot_box_iou(reference, None) is None
    rotate = next(s for s in benchmark_samples(1, seed=2) if s.category == "camera_rotate")
    assert cot_box_iou({"cot": rotate.cot.to_dict()}, rotate.cot.render()) is None  # nothing to box
