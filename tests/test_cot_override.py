"""--cot-file: a user's Meta-CoT conditions the edit exactly as the model's own plan would, and an edited copy
changes the cached context in the thinking tokens only; bad files are one-line errors naming the line."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from data.metacot import MetaCoT
from data.shapes_edit.export import benchmark_samples
from data.shapes_edit.render import render
from inference.cot_override import describe_cot, edit_with_cot, read_cot_file
from inference.edit_io import InputError
from inference.inferencer import BagelInferencer, GeneratedImage, GeneratedText

FAST = {"num_timesteps": 3, "vae_transform": (64, 32, 16), "vit_transform": (56, 28, 14)}


@pytest.fixture(scope="module")
def sample():
    return next(s for s in benchmark_samples(1, seed=4) if s.category == "recolor_object")


def _capture(monkeypatch, inferencer: BagelInferencer) -> list:
    """Records the contexts every image would be generated from (and skips the denoising: same contexts and the
    same seed give the same image)."""
    seen = []

    def generate_image(contexts, image_hw, *args, **kwargs):
        seen.append(contexts)
        return GeneratedImage(Image.new("RGB", image_hw[::-1]), torch.zeros(1))

    monkeypatch.setattr(inferencer, "generate_image", generate_image)
    return seen


def _first_difference(a, b) -> int | None:
    """The first cached position where two contexts differ in any layer's keys or values (None: identical)."""
    n = min(a.length, b.length)
    differs = torch.zeros(n, dtype=torch.bool)
    for x, y in zip(a.layers, b.layers):
        differs |= (x.keys[:n] != y.keys[:n]).flatten(1).any(1) | (x.values[:n] != y.values[:n]).flatten(1).any(1)
    if differs.any():
        return int(differs.nonzero()[0])
    return None if a.length == b.length else n


def _thinking_ids(inferencer: BagelInferencer, text: str) -> list[int]:
    special = inferencer.bundle.special_tokens
    return [special.bos, *inferencer.bundle.tokenizer.encode(text, add_special_tokens=False), special.eos]


def test_cot_file_conditions_like_the_models_own_plan(inferencer, sample, tmp_path, monkeypatch) -> None:
    image, text = render(sample.source, 128), sample.cot.render()
    seen = _capture(monkeypatch, inferencer)
    # the model's own plan, as a trained model would write it (the tiny fixture writes no Meta-CoT)
    monkeypatch.setattr(inferencer, "generate_text", lambda *a, **k: GeneratedText([0], torch.zeros(1, 1), text))
    own = inferencer.edit(image, sample.instruction, think=True, seed=3, **FAST)
    (tmp_path / "plan.txt").write_text(text.replace("<think>\n", "").replace("\n</think>", "") + "\n\n")
    assert read_cot_file(tmp_path / "plan.txt") == sample.cot  # tags and trailing blank lines do not matter
    (tmp_path / "plan.json").write_text(json.dumps(sample.cot.to_dict(), indent=2))
    given = edit_with_cot(inferencer, image, sample.instruction, read_cot_file(tmp_path / "plan.json"), seed=3, **FAST)
    assert given.think_text == own.think_text == text
    for branch in ("cond", "text_uncond", "img_uncond"):
        a, b = getattr(seen[0], branch), getattr(seen[1], branch)
        assert a.length == b.length and _first_difference(a, b) is None, branch


def test_moved_box_changes_only_the_thinking_tokens(inferencer, sample, monkeypatch) -> None:
    image, cot = render(sample.source, 128), sample.cot
    other = next(s for s in sample.source.shapes if s.box != cot.traversal[0].box)
    first_line = {**cot.to_dict()["traversal"][0], "box": list(other.box)}
    moved = MetaCoT.from_dict({**cot.to_dict(), "traversal": [first_line]})
    seen = _capture(monkeypatch, inferencer)
    edit_with_cot(inferencer, image, sample.instruction, cot, seed=3, **FAST)
    edit_with_cot(inferencer, image, sample.instruction, moved, seed=3, **FAST)
    first, second = seen
    for branch in ("text_uncond", "img_uncond"):  # the plan conditions the cond context only
        assert _first_difference(getattr(first, branch), getattr(second, branch)) is None
    ids_a, ids_b = _thinking_ids(inferencer, cot.render()), _thinking_ids(inferencer, moved.render())
    start = first.cond.length - len(ids_a)
    assert start == second.cond.length - len(ids_b)  # same context up to the plan
    changed = next(i for i, (a, b) in enumerate(zip(ids_a, ids_b)) if a != b)
    assert _first_difference(first.cond, second.cond) == start + changed  # equal up to the moved box's first token


def test_describe_cot_shows_triplet_meta_tasks_and_boxes(sample) -> None:
    shown = describe_cot(sample.cot.render())
    box = ", ".join(map(str, sample.cot.traversal[0].box))
    assert f"task: {sample.cot.task}" in shown and "meta-tasks: Replacement" in shown and f"box [{box}]" in shown
    assert describe_cot("gibberish").startswith("CoT (not a Meta-CoT: missing the line 'Task: ...')")


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("", "is empty"),
    ("Task: x\nTarget: y\nUnderstanding ability: z\nStep 1 - Meta-task summary: Deletion. s\n"
     "Step 2 - Task thinking: t\nStep 3 - Target traversal:\n- a shape [1, 2, 3] | Deletion | remove it\n",
     r"plan.txt:7: box \[1, 2, 3\] must be 4 integers"),
    ("Task: x\nTarget: y\nStep 1 - Meta-task summary: Deletion. s\n", "plan.txt: missing the line 'Understanding"),
    ('{"task": "x",\n "target": }', "plan.txt:2: not valid JSON"),
    ('{"task": "x"}', "plan.txt: Meta-CoT record is missing or has a bad field"),
])
def test_bad_cot_files_are_one_line_errors(tmp_path, content, message) -> None:
    path = tmp_path / "plan.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        read_cot_file(path)
    assert "\n" not in str(info.value)
