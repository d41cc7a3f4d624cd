"""The exact ShapesEdit judge: full marks for the ground truth, lower for each kind of wrong image."""

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageFilter

from data.metacot import MetaCoT, TargetStep
from data.shapes_edit.export import write_benchmark
from data.shapes_edit.judge import score_edit
from data.shapes_edit.render import render
from data.shapes_edit.scene import COLOURS, Scene
from data.shapes_edit.tasks import CATEGORIES, make_edit_sample

SCORES = ("instruction", "preservation", "quality", "cot_consistency", "overall")


def _case(category: str, key: str = "judge"):
    sample = make_edit_sample(category, key)
    reference = {"source_scene": sample.source.to_dict(), "target_scene": sample.target.to_dict(),
                 "cot": sample.cot.to_dict()}
    return sample, reference


def _overall(reference: dict, image: Image.Image) -> float:
    return score_edit(reference, image)["overall"]


def test_ground_truth_gets_overall_in_every_category():
    for category in CATEGORIES:
        sample, reference = _case(category)
        result = score_edit(reference, render(sample.target, 256), sample.cot.render())
        assert [result[k] for k in SCORES] == [10.0] * 5, (category, result["explanation"])
        assert result["cot_matches_target"] is True and result["cot_correct"] == 10.0


def test_wrong_object_scores_lower():
    sample, reference = _case("remove_object")
    removed = sample.cot.traversal[0].box
    wrong = next(s for s in sample.source.shapes if s.box != removed)
    result = score_edit(reference, render(sample.source.with_shapes(set(sample.source.shapes) - {wrong}), 256))
    assert result["instruction"] == 0.0 and result["preservation"] < 10.0
    assert result["overall"] < _overall(reference, render(sample.target, 256))
    assert "still there" in result["explanation"] and "lost" in result["explanation"]


def test_wrong_colour_scores_lower():
    sample, reference = _case("recolor_object")
    (changed,) = set(sample.target.shapes) - set(sample.source.shapes)
    (old,) = set(sample.source.shapes) - set(sample.target.shapes)
    third = next(c for c in COLOURS if c not in (changed.colour, old.colour))
    wrong = sample.target.with_shapes(set(sample.target.shapes) - {changed} | {changed.replace(colour=third)})
    result = score_edit(reference, render(wrong, 256))
    # the old colour is gone, the asked one never came: the removal is credited by the share of the expected scene
    # that is there (the unchanged shapes, not the recoloured one)
    kept = len(sample.source.shapes) - 1
    assert result["instruction"] == round(10 * (kept / (kept + 1)) / 2, 3)
    assert result["preservation_raw"] == 10.0 and result["preservation"] == round(result["instruction"], 3)
    assert result["overall"] < _overall(reference, render(sample.target, 256))


def test_extra_change_scores_lower():
    sample, reference = _case("recolor_object")
    bystander = next(s for s in sample.target.shapes if s in sample.source.shapes)
    recoloured = bystander.replace(colour=next(c for c in COLOURS if c != bystander.colour))
    extra = sample.target.with_shapes(set(sample.target.shapes) - {bystander} | {recoloured})
    result = score_edit(reference, render(extra, 256))
    # the asked change is there; the removal of the old colour counts for the share of the expected scene present
    expected = len(sample.target.shapes)
    assert result["instruction"] == round(10 * (1 + (expected - 1) / expected) / 2, 3)
    assert result["preservation_raw"] < 10.0
    assert result["overall"] < _overall(reference, render(sample.target, 256))


def test_nothing_changed_scores_lower():
    for category in ("add_object", "camera_zoom", "swap_objects"):
        sample, reference = _case(category)
        result = score_edit(reference, render(sample.source, 256))
        assert result["instruction"] == 0.0 and result["overall"] == 0.0, category


def test_noise_image_scores_lower():
    sample, reference = _case("move_object")
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    result = score_edit(reference, Image.fromarray(noise))
    assert result["quality"] < 2.0 and result["preservation"] < 5.0
    assert result["overall"] < 5.0 < _overall(reference, render(sample.target, 256))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _jitter(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image).astype(int) + np.random.default_rng(0).integers(-20, 21, (*image.size[::-1], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


DEGRADATIONS = {
    "nearest upscale to 700 px": lambda im: im.resize((700, 700), Image.Resampling.NEAREST),
    "bilinear upscale to 1024 px": lambda im: im.resize((1024, 1024), Image.Resampling.BILINEAR),
    "gaussian blur 1 px": lambda im: im.filter(ImageFilter.GaussianBlur(1.0)),
    "jpeg quality 75": lambda im: _jpeg(im, 75),
    "shift by 6 px": lambda im: ImageChops.offset(im, 6, 6),
    "pixel noise +-20": _jitter,
}


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_judge_reads_degraded_ground_truth_as_correct(name):
    # what a generator's output looks like: resampled, soft, compressed, a little off the grid
    for category in ("multi_edit", "camera_zoom", "recolor_shape_group"):
        sample, reference = _case(category)
        result = score_edit(reference, DEGRADATIONS[name](render(sample.target, 256)))
        assert result["instruction"] == 10.0 and result["preservation"] == 10.0, (category, result["explanation"])
        assert result["quality"] > 8.0


def test_cot_consistency_follows_the_models_own_cot():
    sample, reference = _case("remove_object", "cec")
    wrong = next(s for s in sample.source.shapes if s.box != sample.cot.traversal[0].box)
    model_cot = MetaCoT.from_dict(sample.cot.to_dict())
    model_cot.traversal = [TargetStep("a shape", "Deletion", "remove it", wrong.box)]
    image = render(sample.source.with_shapes(set(sample.source.shapes) - {wrong}), 256)
    result = score_edit(reference, image, model_cot.render())
    assert result["cot_consistency"] == 10.0  # the image does what the (wrong) CoT says
    assert result["instruction"] == 0.0 and result["cot_matches_target"] is False and result["cot_correct"] == 0.0
    assert "cot_correct" not in score_edit(reference, image)  # no model CoT, nothing to grade
    garbled = score_edit(reference, image, "<think>I will remove something</think>")
    assert garbled["cot_consistency"] == 0.0 and "does not parse" in garbled["explanation"]


def test_score_edit_works_from_the_benchmark_folder_alone(tmp_path):
    write_benchmark(tmp_path, per_category=1, size=128)
    for line in (tmp_path / "samples.jsonl").read_text().splitlines():
        record = json.loads(line)
        reference = json.loads(json.dumps(record["reference"]))
        target = Image.open(tmp_path / reference["target_image"])
        source = Image.open(tmp_path / record["source_image"])
        assert score_edit(reference, target)["overall"] == 10.0
        assert score_edit(reference, source)["overall"] < 10.0
        assert Scene.from_dict(reference["source_scene"]) != Scene.from_dict(reference["target_scene"])


# ---------------------------------------------------------------------------------------- degenerate outputs
@pytest.fixture(scope="module")
def bench_records(tmp_path_factory):
    from data.shapes_edit.baselines import load_records

    bench = tmp_path_factory.mktemp("judge_bench")
    write_benchmark(bench, per_category=1, seed=11, size=128)
    return load_records(bench)


def test_degenerate_outputs_score_at_the_bottom_on_every_dimension(bench_records):
    from data.shapes_edit.baselines import DEGENERATE, DIMENSIONS, score_baselines, summarize

    summary = summarize(score_baselines(bench_records, list(DEGENERATE)))
    assert set(summary) == set(DEGENERATE)
    for name, s in summary.items():
        exact_zero = name != "source blurred"  # blur can erase a small shape; see the judge's module docstring
        for category, means in s["categories"].items():
            for d in DIMENSIONS:
                assert means[d] == 0.0 if exact_zero else means[d] <= 2.0, (name, category, d, means[d])
        assert all(s["overall"][d] <= 0.3 for d in DIMENSIONS), (name, s["overall"])
    # what the old judge rewarded: a blank image explains every pixel and lacks every removed shape
    blank = summary["blank grey"]["overall"]
    assert blank["quality_raw"] == 10.0 and blank["quality"] == 0.0
    assert summary["source"]["overall"]["preservation_raw"] == 10.0


def test_partial_edits_score_between_the_bottom_and_the_ground_truth(bench_records):
    from data.shapes_edit.baselines import PARTIAL, score_baselines, summarize

    summary = summarize(score_baselines(bench_records, [*PARTIAL, "ground truth"]))
    truth = summary.pop("ground truth")
    assert all(v == 10.0 for c in truth["categories"].values() for v in c.values()), truth
    for name, s in summary.items():
        assert 0.5 < s["overall"]["overall"] < 8.0, (name, s["overall"])
    blurred = summary["target heavily blurred"]["overall"]
    assert blurred["quality_raw"] < 9.5
    # a half-done edit is never scored as a whole one, nor as nothing
    half = summary["half of the edit"]["categories"]
    assert all(0.0 < c["instruction"] < 10.0 for c in half.values()), half
