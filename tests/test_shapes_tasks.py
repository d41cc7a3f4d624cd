"""ShapesEdit categories: valid scenes, CoTs that execute to the target, determinism, exact understanding answers."""

import json
from itertools import combinations

import pytest

from data.metacot import KEEP, META_TASKS, MetaCoT, TargetStep, parse_metacot
from data.shapes_edit.edits import EditError, Rotate, apply_camera, apply_ops, cot_to_ops, step_to_op
from data.shapes_edit.language import plural
from data.shapes_edit.recover import recover_scene
from data.shapes_edit.render import render
from data.shapes_edit.scene import CANVAS, Scene
from data.shapes_edit.tasks import CATEGORIES, make_edit_sample
from data.shapes_edit.understanding import make_conversation


def _overlap(scene: Scene) -> bool:
    def disjoint(a, b):
        return a.box[2] <= b.box[0] or b.box[2] <= a.box[0] or a.box[3] <= b.box[1] or b.box[3] <= a.box[1]
    return any(not disjoint(a, b) for a, b in combinations(scene.shapes, 2))


def test_there_are_21_categories_covering_the_five_meta_tasks():
    assert len(CATEGORIES) == 21
    seen = {m for name in CATEGORIES for m in make_edit_sample(name, "cover").cot.meta_tasks}
    assert seen == set(META_TASKS)


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_category_samples_are_valid_and_their_cot_executes_to_the_target(category):
    for key in range(15):
        sample = make_edit_sample(category, str(key))
        assert sample.source != sample.target
        assert not _overlap(sample.source) and not _overlap(sample.target)
        assert all(0 < s.x < CANVAS and 0 < s.y < CANVAS for s in sample.target.shapes)
        # the rendered training text parses back and its target lines rebuild the target scene exactly
        cot = parse_metacot(sample.cot.render())
        assert cot == sample.cot
        ops, errors = cot_to_ops(cot, sample.source)
        assert errors == []
        assert apply_ops(sample.source, ops) == sample.target


def test_samples_are_deterministic_by_key():
    a, b = make_edit_sample("spatial_remove", "k1"), make_edit_sample("spatial_remove", "k1")
    assert (a.source, a.target, a.instruction, a.cot) == (b.source, b.target, b.instruction, b.cot)
    others = {make_edit_sample("spatial_remove", f"k{i}").source for i in range(2, 12)}
    assert len(others) == 10


def test_unknown_category_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown ShapesEdit category 'paint'"):
        make_edit_sample("paint", "0")


def test_hand_edited_cot_line_retargets_the_edit():
    sample = make_edit_sample("remove_object", "edit-me")
    # the user moves the line's box onto another shape: the edit follows the box
    other = next(s for s in sample.source.shapes if s.box != sample.cot.traversal[0].box)
    step = TargetStep("some shape", "Deletion", "remove it", other.box)
    edited = apply_ops(sample.source, [step_to_op(step, sample.source)])
    assert set(edited.shapes) == set(sample.source.shapes) - {other}


def test_camera_lines_parse_both_rotation_senses_and_reject_unknown_motion():
    scene = make_edit_sample("camera_rotate", "0").source
    ccw = step_to_op(TargetStep("the whole scene", "Camera Motion", "rotate the view 90 degrees counter-clockwise"),
                     scene)
    assert apply_camera(apply_camera(scene, ccw), Rotate(90)) == scene
    with pytest.raises(EditError, match="is not a 90/180/270-degree rotation"):
        step_to_op(TargetStep("the whole scene", "Camera Motion", "tilt the view a little"), scene)


def test_understanding_answers_agree_with_the_scene_read_from_the_image():
    for key in range(30):
        scene = make_edit_sample("add_object", f"u{key}").source
        seen = recover_scene(render(scene, 256))  # answers checked against what the image shows
        turns = make_conversation(scene, str(key))
        assert [t["role"] for t in turns] == ["user", "assistant"] * 3
        json.dumps(turns)
        for question, answer in zip(turns[::2], turns[1::2]):
            q, a = question["text"], answer["text"]
            if q.startswith("How many shapes"):
                assert a == str(len(seen.shapes))
            elif q.startswith("How many") and q.endswith("shapes are there?"):
                colour = q.split()[2]
                assert a == str(sum(s.colour == colour for s in seen.shapes))
            elif q.startswith("How many") and q.endswith("in the picture?"):
                kind = q.split()[2]
                assert a == str(sum(plural(s.shape) == kind for s in seen.shapes))
            elif q.startswith("What is in row"):
                row, col = int(q.split()[4].rstrip(",")) - 1, int(q.split()[6]) - 1
                found = seen.at_cell(row, col)
                if found is None:
                    assert a == "Nothing; that cell is empty."
                else:
                    assert a.split()[2:] == [found.colour, found.shape + "."]
            elif q.startswith("What colour is the background"):
                assert a.lower() == seen.background + "."
            elif q.startswith("List every shape"):
                assert a.count("[") == len(seen.shapes)


def test_reference_shapes_get_keep_lines_that_execute_to_no_operation():
    for category in ("relational_move", "spatial_remove", "duplicate_object"):
        sample = make_edit_sample(category, "keep")
        kept = [s for s in sample.cot.traversal if s.keeps]
        assert len(kept) == 1, category  # the anchor (or the original of the copy)
        parsed = parse_metacot(sample.cot.render())
        ops, errors = cot_to_ops(parsed, sample.source)
        assert errors == [] and len(ops) == len(sample.cot.traversal) - 1
        assert apply_ops(sample.source, ops) == sample.target
        box = kept[0].box
        assert any(s.box == box for s in sample.target.shapes if s in sample.source.shapes)  # it did stay


def test_keep_line_on_a_changed_or_missing_shape_is_an_error():
    sample = make_edit_sample("remove_object", "keep")
    removed = sample.cot.traversal[0]
    contradiction = MetaCoT.from_dict(sample.cot.to_dict())
    contradiction.traversal.append(TargetStep(removed.target, KEEP, "keep it unchanged", removed.box))
    _, errors = cot_to_ops(contradiction, sample.source)
    assert len(errors) == 1 and "another line changes" in errors[0]
    nowhere = MetaCoT.from_dict(sample.cot.to_dict())
    nowhere.traversal.append(TargetStep("purple unicorn", KEEP, "keep it unchanged"))
    _, errors = cot_to_ops(nowhere, sample.source)
    assert len(errors) == 1 and "no single shape matches" in errors[0]
