"""Evaluating a reflecting editor on ShapesEdit: every round is kept and scored (round_k), the verdicts are checked
against the exact judge (verdict_accuracy), and the CoT boxes against the true objects (box_iou)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from data.metacot import MetaCoT
from data.reflection import Reflection
from data.shapes_edit.export import write_benchmark
from inference.benchmark.generate import GenSettings
from inference.benchmark.judges import JudgeSettings
from inference.benchmark.pipeline import EvalConfig, run_evaluation
from inference.reflection import ReflectionResult, ReflectionRound

REFINE = Reflection("refine", "Not done yet.", "Do it.")
SUCCESS = Reflection("success", "Done.")


class ScriptedReflector:
    """Round 1 returns the source unchanged (verdict refine: right), round 2 the true target; its round-2 verdict
    is right (success) for even samples and wrong (refine) for odd ones. Even samples think the reference CoT, odd
    ones a CoT whose first box is moved off its object."""

    def __init__(self, bench_dir):
        self.samples = {}
        for index, line in enumerate((bench_dir / "samples.jsonl").read_text().splitlines()):
            row = json.loads(line)
            self.samples[row["instruction"]] = (index, row["reference"], bench_dir / row["reference"]["target_image"])

    def edit(self, image, instruction, *, think=False, seed=0, **hyper):
        index, reference, target_path = self.samples[instruction]
        cot = MetaCoT.from_dict(reference["cot"])
        if index % 2 and cot.traversal and cot.traversal[0].box is not None:
            cot.traversal[0].box = (0, 0, 10, 10)
        with Image.open(target_path) as im:
            target = im.convert("RGB")
        second = SUCCESS if index % 2 == 0 else REFINE
        rounds = [ReflectionRound(1, instruction, image, cot.render(), REFINE.render(), REFINE, None, {"total_s": 1}),
                  ReflectionRound(2, "Do it.", target, None, second.render(), second, None, {"total_s": 1})]
        return ReflectionResult(rounds, "success" if second is SUCCESS else "budget", max_rounds=3)


def test_reflection_rounds_are_scored_round_by_round(tmp_path) -> None:
    bench = tmp_path / "bench"
    write_benchmark(bench, per_category=1, seed=0, size=128)
    lines = (bench / "samples.jsonl").read_text().splitlines()
    keep = [line for line in lines if json.loads(line)["category"] in
            ("remove_object", "recolor_object", "camera_rotate", "move_object")]
    (bench / "samples.jsonl").write_text("\n".join(keep) + "\n")
    out = tmp_path / "run"
    cfg = EvalConfig(bench="shapes", bench_dir=str(bench), out=str(out), model_path="scripted",
                     generation=GenSettings(think=True), judge=JudgeSettings(backend="exact", model="exact"),
                     show_progress=False, grid_per_category=1)
    result = run_evaluation(cfg, editor=ScriptedReflector(bench))
    assert result.headline["exact"] == pytest.approx(10.0)  # the final image is the target

    rows = {r["id"]: r for r in map(json.loads, (out / "scores.jsonl").read_text().splitlines())}
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows.values())
    for index, row in enumerate(rows[json.loads(line)["id"]] for line in keep):
        scores = row["subscores"]
        assert scores["round_1"] == 0.0  # the unchanged source
        assert scores["round_2"] == scores["round_3"] == row["overall"] == pytest.approx(10.0)  # carried forward
        assert scores["verdict_accuracy"] == (1.0 if index % 2 == 0 else 0.5)
        category = row["category"]
        if category == "camera_rotate":
            assert "box_iou" not in scores  # a rotation acts on the whole view: no box to find
        else:
            assert scores["box_iou"] == (1.0 if index % 2 == 0 else 0.0)
        gen = json.loads((out / "gen" / f"{row['id']}.json").read_text())
        assert [r["outcome"] for r in gen["reflection"]["rounds"]][0] == "refine"
        assert all((out / r["image"]).is_file() for r in gen["reflection"]["rounds"])

    summary = json.loads((out / "summary.json").read_text())["scorers"]["exact"]
    assert summary["micro"]["round_1"] == 0.0 and summary["micro"]["round_2"] == pytest.approx(10.0)
    assert summary["micro"]["verdict_accuracy"] == pytest.approx(0.75)
    assert "round_2" in (out / "summary.md").read_text()


def test_tiny_model_reflects_through_the_eval_cli(tmp_path) -> None:
    from inference.eval_benchmark import main
    from tests.fixture_paths import TINY

    bench = tmp_path / "bench"
    write_benchmark(bench, per_category=1, seed=0, size=64)
    first = (bench / "samples.jsonl").read_text().splitlines()[0]
    (bench / "samples.jsonl").write_text(first + "\n")
    out = tmp_path / "run"
    assert main(["--model-path", str(TINY), "--bench", "shapes", "--bench-dir", str(bench), "--out", str(out),
                 "--editor-factory", "inference.reflection:ReflectingEditor.from_pretrained", "--hyper",
                 "max_rounds=2", "--hyper", "max_verdict_tokens=8", "--device", "cpu", "--dtype", "float32",
                 "--num-timesteps", "3", "--hyper", "vae_transform=[64, 32, 16]", "--hyper",
                 "vit_transform=[56, 28, 14]", "--no-progress"]) == 0
    (row,) = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    gen = json.loads((out / "gen" / f"{row['id']}.json").read_text())
    assert gen["reflection"]["stop_reason"] == "unparsed" and len(gen["reflection"]["rounds"]) == 1
    scores = row["subscores"]
    assert scores["round_1"] == scores["round_2"] == row["overall"]  # one round, carried to the budget of two
    assert scores["verdict_accuracy"] == 0.0  # an unparsable verdict is never right
