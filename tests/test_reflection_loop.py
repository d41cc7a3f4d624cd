"""The reflection loop on the tiny model: stops on success / failed / an unparsable verdict, respects the round
budget, records every round, and edits round 2 from round 1's result with the verdict in context."""

from __future__ import annotations

import pytest

from data.reflection import REFLECTION_PROMPT, Reflection
from inference.reflection import ReflectingEditor, RoundView, reflect_and_edit

FAST = {"num_timesteps": 3, "vae_transform": (64, 32, 16), "vit_transform": (56, 28, 14)}
REFINE = Reflection("refine", "The square is still red.", "Make the red square blue.").render()
SUCCESS = Reflection("success", "The square is blue.").render()


def scripted(texts: list[str], views: list[RoundView]):
    def write(view: RoundView) -> str:
        views.append(view)
        return texts[min(view.round, len(texts)) - 1]
    return write


def test_untrained_verdict_stops_as_unparsed_and_is_recorded(inferencer, source) -> None:
    result = inferencer.edit_with_reflection(source, "make the square blue", seed=1, max_rounds=3,
                                             max_verdict_tokens=12, **FAST)
    assert result.stop_reason == "unparsed" and len(result.rounds) == 1
    only = result.rounds[0]
    assert only.outcome == "unparsed" and only.verdict is None and only.parse_error
    assert isinstance(only.verdict_text, str) and only.timings["reflect_s"] > 0 and only.timings["total_s"] > 0
    assert result.image is only.image and result.to_record()["rounds"][0]["outcome"] == "unparsed"


def test_refine_then_success_stops_after_round_two(inferencer, source, monkeypatch) -> None:
    lengths, original = [], inferencer.generate_image

    def generate_image(contexts, *args, **kwargs):  # context sizes at the moment each image is generated
        lengths.append((contexts.cond.length, contexts.text_uncond.length, contexts.img_uncond.length))
        return original(contexts, *args, **kwargs)

    monkeypatch.setattr(inferencer, "generate_image", generate_image)
    views: list[RoundView] = []
    result = reflect_and_edit(inferencer, source, "make the square blue", seed=2, max_rounds=3,
                              verdict_writer=scripted([REFINE, SUCCESS], views), **FAST)
    assert result.stop_reason == "success" and [r.outcome for r in result.rounds] == ["refine", "success"]
    assert [r.instruction for r in result.rounds] == ["make the square blue", "Make the red square blue."]
    assert [v.result for v in views] == [r.image for r in result.rounds]  # each verdict judged its round's image
    assert result.rounds[0].image.tobytes() != result.rounds[1].image.tobytes()
    # round 2's context: + round 1's result image, the reflection prompt and the verdict (as cond and img_uncond
    # text); its text-unconditional branch ends at the result image
    tokens = inferencer.bundle.tokenizer
    text_len = {t: len(tokens.encode(t, add_special_tokens=False)) + 2 for t in (REFLECTION_PROMPT, REFINE)}
    (cond1, _, img1), (cond2, text2, img2) = lengths
    assert cond2 - text2 == img2 - img1 == text_len[REFLECTION_PROMPT] + text_len[REFINE]
    image_tokens = cond2 - cond1 - text_len[REFLECTION_PROMPT] - text_len[REFINE]
    assert image_tokens == (4 * 4 + 2) + (4 * 4 + 2)  # the 64 px result: VAE 4x4 and ViT 4x4 blocks


def test_round_budget_is_respected_and_every_round_recorded(inferencer, source) -> None:
    views: list[RoundView] = []
    result = reflect_and_edit(inferencer, source, "make the square blue", seed=3, max_rounds=2,
                              verdict_writer=scripted([REFINE], views), **FAST)
    assert result.stop_reason == "budget" and len(result.rounds) == 2 == len(views)  # the last round is judged too
    record = result.to_record(["r1.png", "r2.png"])
    assert [r["image"] for r in record["rounds"]] == ["r1.png", "r2.png"] and record["max_rounds"] == 2
    assert all(r["verdict"]["verdict"] == "refine" for r in record["rounds"])
    assert result.timings["rounds"] == 2


def test_failed_verdict_stops(inferencer, source) -> None:
    failed = Reflection("failed", "There is no square.").render()
    editor = ReflectingEditor(inferencer, max_rounds=3)
    result = editor.edit(source, "make the square blue", seed=4, verdict_writer=scripted([failed], []), **FAST)
    assert result.stop_reason == "failed" and len(result.rounds) == 1


def test_bad_budget_is_an_error(inferencer, source) -> None:
    with pytest.raises(ValueError, match="max_rounds must be >= 1"):
        reflect_and_edit(inferencer, source, "x", max_rounds=0)
