"""Rendering records into segment plans: the Meta-CoT edit format, CE placement, and errors as skip reasons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data.demo_records import BYTE_SPECIAL_TOKENS, ByteTokenizer, demo_metacot, demo_record, random_image_bytes
from data.metacot import parse_metacot
from data.packing import PackingConfig, SpecialTokens, pack_samples
from data.prompts import THINK_GENERATION_SYSTEM_PROMPT
from data.render import SampleError, SampleRenderer
from data.segments import TextSegment, VaeImageSegment, VitImageSegment
from data.transforms import ImageTransform
from tests.fixture_paths import TINY

TOKENIZER = ByteTokenizer()
RENDERER = SampleRenderer(TOKENIZER, ImageTransform(64, 32, 16), ImageTransform(56, 28, 14))
SPECIAL = SpecialTokens.from_dict(BYTE_SPECIAL_TOKENS)


def record(kind: str, i: int = 3) -> dict:
    return demo_record(i, kind, np.random.default_rng(i), (40, 72))


def test_edit_cot_plan_and_ce_only_on_the_cot() -> None:
    row = record("edit_cot")
    sample = RENDERER.render(row, "ds")
    kinds = [type(s) for s in sample.segments]
    assert kinds == [TextSegment, VaeImageSegment, VitImageSegment, TextSegment, TextSegment, VaeImageSegment]
    system, _, _, instruction, cot, target = sample.segments
    assert TOKENIZER.decode(system.ids) == THINK_GENERATION_SYSTEM_PROMPT and not system.loss
    assert TOKENIZER.decode(instruction.ids) == row["instruction"] and instruction.droppable and not instruction.loss
    assert cot.loss and not cot.droppable and target.noised
    cot_text = TOKENIZER.decode(cot.ids)
    assert cot_text.startswith("<think>\n") and cot_text.endswith("\n</think>")
    assert parse_metacot(cot_text) == demo_metacot(3)  # the trained text parses back to the record

    batch = pack_samples([sample], SPECIAL, PackingConfig(vit_max_num_patch_per_side=16, max_latent_size=16),
                         np.random.default_rng(0))
    labels = batch["packed_label_ids"].tolist()
    assert labels[-1] == SPECIAL.eos_token_id and TOKENIZER.decode(labels[:-1]) == cot_text


def test_rendered_metacot_text_is_accepted_as_well_as_json() -> None:
    row = record("edit_cot")
    row["cot"] = demo_metacot(3).render(with_think_tags=False)
    assert TOKENIZER.decode(RENDERER.render(row, "ds").segments[4].ids) == demo_metacot(3).render()


def test_plain_edit_has_no_system_prompt_and_no_text_loss() -> None:
    sample = RENDERER.render(record("edit"), "ds")
    assert [type(s) for s in sample.segments] == [VaeImageSegment, VitImageSegment, TextSegment, VaeImageSegment]
    assert not any(getattr(s, "loss", False) for s in sample.segments)


def test_edit_with_free_thinking_text_is_wrapped_in_think_tags() -> None:
    row = record("edit")
    row["cot"] = "The sky is at the top; paint it blue."
    thinking = RENDERER.render(row, "ds").segments[4]
    assert thinking.loss
    assert TOKENIZER.decode(thinking.ids) == "<think>\nThe sky is at the top; paint it blue.\n</think>"


def test_understanding_and_text_turns() -> None:
    sample = RENDERER.render(record("understanding"), "ds")
    assert isinstance(sample.segments[0], VitImageSegment) and not sample.segments[0].droppable
    assert [s.loss for s in sample.segments[1:]] == [False, True]
    assert [s.loss for s in RENDERER.render(record("text"), "ds").segments] == [False, True]


def test_images_of_any_mode_are_resized_to_stride_multiples() -> None:
    row = record("t2i")
    row["target_image"] = random_image_bytes(np.random.default_rng(0), 50, 90, "JPEG")
    target = RENDERER.render(row, "ds").segments[1].pixels
    assert target.shape[1] % 16 == 0 and target.shape[2] % 16 == 0 and target.abs().max() <= 1


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda r: r.update(source_image=b"not an image"), "corrupt_image"),
    (lambda r: r.update(source_image=r["source_image"][:60]), "corrupt_image"),
    (lambda r: r.pop("target_image"), "missing_field"),
    (lambda r: r.update(instruction="  "), "missing_field"),
    (lambda r: r.update(cot="Task: x\nno steps here"), "bad_cot"),
    (lambda r: r.update(cot=json.dumps({"task": "x"})), "bad_cot"),
    (lambda r: r.update(cot='{"broken json'), "bad_cot"),
    (lambda r: r.update(kind="video"), "bad_kind"),
])
def test_bad_records_raise_sample_error_with_reason(mutate, reason: str) -> None:
    row = record("edit_cot")
    mutate(row)
    with pytest.raises(SampleError) as err:
        RENDERER.render(row, "ds")
    assert err.value.reason == reason


@pytest.mark.parametrize("conversation", ["not json", json.dumps([{"role": "system", "text": "x"}]),
                                          json.dumps([{"role": "user", "text": "q"}])])
def test_bad_conversations(conversation: str) -> None:
    row = record("text")
    row["conversation"] = conversation
    with pytest.raises(SampleError) as err:
        RENDERER.render(row, "ds")
    assert err.value.reason == "bad_conversation"


def test_thinking_system_prompt_is_the_reference_one() -> None:
    case = TINY / "cases" / "think_edit" / "case.json"
    if not case.is_file():
        pytest.skip("BAGEL tiny reference fixtures not present")
    assert json.loads(case.read_text())["system_prompt"] == THINK_GENERATION_SYSTEM_PROMPT
