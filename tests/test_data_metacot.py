"""The Meta-CoT record: Keep lines and a missing Step 2 render and parse back exactly; Keep is no meta-task."""

import pytest

from data.metacot import KEEP, MetaCoT, MetaCoTParseError, TargetStep, parse_metacot


def _cot(**changes) -> MetaCoT:
    values = dict(task="move one shape", target="the red circle", ability="spatial reasoning",
                  meta_tasks=["Position Change"], summary="Move 1 shape.", task_thinking="The circle moves right.",
                  traversal=[TargetStep("small red circle", "Position Change", "move it to [575, 75, 675, 175]",
                                        (325, 75, 425, 175)),
                             TargetStep("large blue star", KEEP, "keep it unchanged", (50, 50, 250, 250))])
    return MetaCoT(**{**values, **changes})


def test_keep_lines_round_trip_through_text_and_json():
    cot = _cot()
    text = cot.render()
    assert "- large blue star [50, 50, 250, 250] | Keep | keep it unchanged" in text
    parsed = parse_metacot(text)
    assert parsed == cot and parsed.render() == text
    assert MetaCoT.from_dict(cot.to_dict()) == cot
    assert [s.keeps for s in parsed.traversal] == [False, True]


def test_without_task_thinking_step_two_is_left_out_and_parses_back():
    cot = _cot(task_thinking="")
    text = cot.render()
    assert "Step 2" not in text
    parsed = parse_metacot(text)
    assert parsed == cot and parsed.task_thinking == ""
    # an empty Step 2 line written by hand does not swallow Step 3
    hand = _cot().render().replace("Step 2 - Task thinking: The circle moves right.", "Step 2 - Task thinking:")
    assert parse_metacot(hand).traversal == cot.traversal


def test_keep_is_a_line_marker_not_a_meta_task():
    with pytest.raises(MetaCoTParseError, match="unknown meta-task"):
        _cot(meta_tasks=[KEEP])
    with pytest.raises(MetaCoTParseError, match="unknown meta-task"):
        TargetStep("a shape", "Keeping", "stay")


def test_missing_line_error_names_the_line():
    with pytest.raises(MetaCoTParseError, match="missing the line 'Task: ...'"):
        parse_metacot(_cot().render().replace("Task: move one shape\n", ""))
