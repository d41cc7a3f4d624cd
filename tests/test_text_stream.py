"""Streamed text (``on_text``): the pieces arrive while tokens are generated and join to the final text."""

from __future__ import annotations

import pytest
from PIL import Image

from inference.inferencer import BagelInferencer
from inference.settings import InferenceSettings
from inference.text_stream import TextStream

FAST = InferenceSettings(num_timesteps=3, max_think_token_n=24, vae_transform=(64, 32, 16), vit_transform=(56, 28, 14))


def test_pieces_wait_for_complete_characters(tiny_bundle):
    tok = tiny_bundle.tokenizer
    text = "héllo wörld ✓ 日本"
    ids = tok.encode(text, add_special_tokens=False)
    pieces: list[str] = []
    stream = TextStream(lambda i: tok.decode(i), pieces.append)
    for k in range(1, len(ids) + 1):
        stream.update(ids[:k])
    stream.finish(tok.decode(ids))
    assert "".join(pieces) == text
    # the tiny byte-level tokenizer splits each of é, ö, ✓, 日, 本 over several tokens: none is sent half-done
    assert len(pieces) < len(ids) and not any("\ufffd" in p for p in pieces)


def test_finish_refuses_a_final_text_that_does_not_extend_the_stream():
    stream = TextStream(lambda ids: "ab"[: len(ids)], [].append)
    stream.update([1, 2])
    with pytest.raises(RuntimeError, match="not a prefix"):
        stream.finish("a")


@pytest.mark.parametrize("do_sample", [False, True])
def test_streamed_thinking_joins_to_the_final_text(tiny_bundle, do_sample):
    inferencer = BagelInferencer(tiny_bundle, FAST)
    image = Image.new("RGB", (64, 48), (30, 120, 220))
    pieces: list[str] = []
    answer = inferencer.understand(image, "What is shown?", think=True, do_sample=do_sample, temperature=1.0,
                                   on_text=pieces.append)
    assert len(pieces) > 3 and "".join(pieces) == answer
    assert answer == inferencer.understand(image, "What is shown?", think=True, do_sample=do_sample, temperature=1.0)

    pieces.clear()
    result = inferencer.edit(image, "make it red", think=True, seed=2, on_text=pieces.append)
    assert len(pieces) > 3 and "".join(pieces) == result.think_text
    plain = inferencer.edit(image, "make it red", think=True, seed=2)
    assert plain.think_text == result.think_text and plain.image.tobytes() == result.image.tobytes()


def test_turn_by_turn_equals_edit_turns(tiny_bundle):
    inferencer = BagelInferencer(tiny_bundle, FAST)
    image = Image.new("RGB", (64, 48), (200, 40, 40))
    expected = inferencer.edit_turns(image, ["make it green", "now add a moon"], think=True, seed=4)
    state = inferencer.start_turns(think=True, seed=4)
    pieces: list[str] = []
    first = inferencer.edit_turn(state, image, "make it green")
    second = inferencer.edit_turn(state, first.image, "now add a moon", on_text=pieces.append)
    assert state.turns == 2 and "".join(pieces) == second.think_text == expected[1].think_text
    assert [first.image.tobytes(), second.image.tobytes()] == [r.image.tobytes() for r in expected]
    with pytest.raises(ValueError, match="instruction is empty"):
        inferencer.edit_turn(state, second.image, "  ")
