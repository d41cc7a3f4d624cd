"""The reflection verdict format, ShapesEdit's reflection samples (labels from the exact judge) and their plan."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest
from PIL import Image

from data.demo_records import BYTE_SPECIAL_TOKENS, ByteTokenizer
from data.metacot import parse_metacot
from data.packing import PackingConfig, SpecialTokens, pack_samples
from data.reflection import REFLECTION_PROMPT, Reflection, ReflectionParseError, parse_reflection
from data.render import SampleError, SampleRenderer
from data.segments import TextSegment, VaeImageSegment, VitImageSegment
from data.shapes_edit.corrections import correction_ops
from data.shapes_edit.edits import apply_ops, cot_to_ops
from data.shapes_edit.imperfect import make_imperfect
from data.shapes_edit.judge import score_edit
from data.shapes_edit.reflection_samples import (impossible_instruction, is_exact, judged_verdict, reflection_row,
                                                 reflection_sample)
from data.shapes_edit.render import render
from data.shapes_edit.tasks import make_edit_sample
from data.transforms import ImageTransform

TOKENIZER = ByteTokenizer()
RENDERER = SampleRenderer(TOKENIZER, ImageTransform(64, 32, 16), ImageTransform(56, 28, 14))


@pytest.mark.parametrize("verdict", [
    Reflection("success", "Done."),
    Reflection("refine", "The circle is still red.", "Make the red circle at [100, 100, 200, 200] blue."),
    Reflection("failed", "There is no green star."),
])
def test_verdict_round_trips_text_and_json(verdict: Reflection) -> None:
    assert parse_reflection(verdict.render()) == verdict
    assert parse_reflection("model chatter " + verdict.render() + " more") == verdict
    assert Reflection.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict


@pytest.mark.parametrize("text, message, line", [
    ("<reflect>\nreason: ok\n</reflect>", "missing the line 'verdict", None),
    ("<reflect>\nverdict: maybe\nreason: ok\n</reflect>", "verdict 'maybe' must be one of", None),
    ("<reflect>\nverdict: refine\nreason: not yet\n</reflect>", "needs a refined instruction", None),
    ("<reflect>\nverdict: success\nreason: ok\nrefined instruction: more\n</reflect>", "only it may have one", None),
    ("<reflect>\nverdict: success\nverdict: refine\nreason: ok\n</reflect>", "'verdict' given twice", 3),
    ("x\n<reflect>\nverdict: success\nthe rest is fine\n</reflect>", "is not one of the lines", 4),
    ("<reflect>\nverdict: success\nreason: ok", "never closed", None),
    ("garbage from an untrained model", "is not one of the lines", 1),
])
def test_bad_verdicts_name_the_problem_and_line(text: str, message: str, line: int | None) -> None:
    with pytest.raises(ReflectionParseError, match=message) as info:
        parse_reflection(text)
    assert info.value.line == line


def _edit(category: str, key: str = "t"):
    sample = make_edit_sample(category, key)
    ops, errors = cot_to_ops(sample.cot, sample.source)
    assert not errors
    return sample, ops


@pytest.mark.parametrize("variant, category", [
    ("nothing", "recolor_object"), ("nothing", "camera_pan"), ("wrong_object", "recolor_object"),
    ("wrong_object", "remove_object"), ("wrong_attribute", "add_object"), ("wrong_attribute", "move_object"),
    ("wrong_attribute", "reshape_object"), ("partial", "multi_edit"), ("over_edit", "remove_object"),
    ("wrong_angle", "camera_rotate"),
])
def test_imperfect_edits_are_judged_wrong_and_their_correction_finishes_the_edit(variant: str, category: str) -> None:
    for key in ("a", "b", "c"):
        sample, ops = _edit(category, key)
        imperfect = make_imperfect(variant, sample.source, sample.target, ops, random.Random(key))
        if imperfect is None:
            continue
        assert imperfect.result != sample.target
        verdict, scores = judged_verdict(sample.source, sample.target, imperfect.result, sample.cot, 256,
                                         imperfect.correction)
        assert verdict.verdict == "refine" and not is_exact(scores)
        fix = imperfect.correction or correction_ops(imperfect.result, sample.target)
        fixed = apply_ops(imperfect.result, fix)
        assert fixed == sample.target
        reference = {"source_scene": sample.source.to_dict(), "target_scene": sample.target.to_dict(),
                     "cot": sample.cot.to_dict()}
        assert is_exact(score_edit(reference, render(fixed, 256)))  # the refined edit, done, is exactly right
        break
    else:
        pytest.fail(f"{variant} never applied to {category}")


def test_reflection_samples_agree_with_the_exact_judge() -> None:
    seen = set()
    for index in range(40):
        sample = reflection_sample(7, index, size=128)
        seen.add(sample.verdict.verdict)
        row = reflection_row(sample, 128)
        assert Reflection.from_dict(json.loads(row["verdict"])) == sample.verdict
        if sample.variant == "impossible":
            assert sample.verdict.verdict == "failed" and sample.result == sample.source
            continue
        # the label is the judge's reading of the stored result image
        reference = {"source_scene": sample.source.to_dict(), "target_scene": sample.target.to_dict(),
                     "cot": sample.cot.to_dict()}
        exact = is_exact(score_edit(reference, Image.open(io.BytesIO(row["result_image"]))))
        assert (sample.verdict.verdict == "success") == exact == (sample.result == sample.target)
        assert (row["target_image"] is not None) == (sample.verdict.verdict == "refine")
    assert seen == {"success", "refine"} or seen == {"success", "refine", "failed"}


def test_impossible_instruction_names_an_absent_shape_and_its_cot_parses() -> None:
    sample, _ = _edit("remove_object")
    instruction, cot, verdict = impossible_instruction(sample.source, random.Random(3))
    colour, form = instruction.split()[2], instruction.split()[3].rstrip(".")
    assert not any(s.colour == colour and s.shape == form for s in sample.source.shapes)
    assert verdict.verdict == "failed" and parse_metacot(cot.render()) == cot and cot.traversal == []


def _demo_reflection_row(verdict: Reflection, with_target: bool) -> dict:
    sample, _ = _edit("recolor_object")
    buf = []
    for scene in (sample.source, sample.source, sample.target):
        out = io.BytesIO()
        render(scene, 64).save(out, format="PNG")
        buf.append(out.getvalue())
    return {"id": "r", "kind": "reflection", "source_image": buf[0], "result_image": buf[1],
            "target_image": buf[2] if with_target else None, "instruction": sample.instruction,
            "cot": json.dumps(sample.cot.to_dict()), "verdict": verdict.render()}


def test_reflection_plan_is_the_inference_context_with_ce_on_the_verdict_only() -> None:
    refine = Reflection("refine", "still red", "Make it blue.")
    sample = RENDERER.render(_demo_reflection_row(refine, with_target=True), "ds")
    kinds = [type(s) for s in sample.segments]
    assert kinds == [TextSegment, VaeImageSegment, VitImageSegment, TextSegment, TextSegment, VaeImageSegment,
                     VitImageSegment, TextSegment, TextSegment, VaeImageSegment]
    prompt, verdict_segment, target = sample.segments[7:]
    assert TOKENIZER.decode(prompt.ids) == REFLECTION_PROMPT
    assert [s for s in sample.segments if getattr(s, "loss", False)] == [verdict_segment]
    assert not any(getattr(s, "droppable", False) for s in sample.segments)
    assert target.noised and not any(getattr(s, "noised", False) for s in sample.segments[:-1])
    batch = pack_samples([sample], SpecialTokens.from_dict(BYTE_SPECIAL_TOKENS),
                         PackingConfig(vit_max_num_patch_per_side=16, max_latent_size=16), np.random.default_rng(0))
    labels = batch["packed_label_ids"].tolist()
    assert TOKENIZER.decode(labels[:-1]) == refine.render()  # CE exactly on the verdict text (+ eos)
    assert len(batch["mse_loss_indexes"]) == 16  # the 64 px target: 4 x 4 latent tokens

    success = RENDERER.render(_demo_reflection_row(Reflection("success", "done"), with_target=True), "ds")
    assert not any(getattr(s, "noised", False) for s in success.segments)  # nothing to edit after success


def test_bad_reflection_rows_are_skipped_with_a_reason() -> None:
    row = _demo_reflection_row(Reflection("success", "done"), with_target=False)
    for change, reason in [({"verdict": "verdict: perhaps"}, "bad_verdict"), ({"verdict": None}, "missing_field"),
                           ({"result_image": None}, "missing_field"), ({"verdict": "{not json"}, "bad_verdict")]:
        with pytest.raises(SampleError) as info:
            RENDERER.render({**row, **change}, "ds")
        assert info.value.reason == reason


def test_reflection_rows_from_the_generate_script_and_a_size_the_judge_cannot_label(tmp_path, capsys) -> None:
    import pyarrow.parquet as pq

    from scripts.shapes_edit.generate import main as generate

    generate(["--out", str(tmp_path / "ok"), "--num-samples", "2", "--size", "128", "--workers", "1",
              "--reflection-samples", "12", "--shard-size", "6"])
    manifest = json.loads((tmp_path / "ok" / "reflection" / "manifest.json").read_text())
    rows = sum(pq.read_metadata(p).num_rows for p in (tmp_path / "ok" / "reflection").glob("part-*.parquet"))
    assert rows == manifest["samples"] == 12 - manifest["skipped"]
    assert sum(v for k, v in manifest["counts"].items() if k.startswith("verdict/")) == rows
    with pytest.raises(SystemExit):
        generate(["--out", str(tmp_path / "small"), "--size", "64", "--reflection-samples", "4"])
    assert "--reflection-samples needs --size >= 128" in capsys.readouterr().err
    assert not (tmp_path / "small").exists()
