"""The edit CLI's reasoning flags end to end on the tiny model: --reflect with its sidecar rounds and contact sheet,
--cot-file with --print-cot, and their one-line errors."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from data.shapes_edit.export import benchmark_samples
from data.shapes_edit.render import render
from inference.edit_single import main
from tests.fixture_paths import TINY

FAST = ["--device", "cpu", "--dtype", "fp32", "--num-timesteps", "3", "--vae-transform", "64", "32", "16",
        "--vit-transform", "56", "28", "14"]


@pytest.fixture()
def sample(tmp_path):
    chosen = next(s for s in benchmark_samples(1, seed=4) if s.category == "recolor_object")
    render(chosen.source, 128).save(tmp_path / "in.png")
    return chosen


def _sidecar(out):
    """OUT's JSON record (OUT.json, or OUT.png.json where the CLI names it so)."""
    return json.loads(next(p for p in (out.with_suffix(".json"), out.with_name(out.name + ".json")) if p.exists())
                      .read_text())


def _run(capsys, tmp_path, *args):
    code = main(["--model-path", str(TINY), "--image", str(tmp_path / "in.png"), *args, *FAST])
    return code, capsys.readouterr()


def test_reflect_writes_every_round_and_a_contact_sheet(tmp_path, capsys, sample) -> None:
    out, sheet = tmp_path / "out.png", tmp_path / "sheet.png"
    code, io = _run(capsys, tmp_path, "--instruction", sample.instruction, "--out", str(out), "--reflect",
                    "--max-rounds", "2", "--max-verdict-tokens", "12", "--contact-sheet", str(sheet))
    assert code == 0, io.err
    meta = _sidecar(out)
    reflection = meta["reflection"]
    # the untrained fixture writes no verdict: the loop stops after round 1 and says why
    assert reflection["max_rounds"] == 2 and reflection["stop_reason"] == "unparsed"
    (only,) = reflection["rounds"]
    assert only["outcome"] == "unparsed" and only["parse_error"] and isinstance(only["verdict_text"], str)
    assert only["timings"]["reflect_s"] > 0 and only["instruction"] == sample.instruction
    assert Image.open(tmp_path / only["image"]).tobytes() == Image.open(out).tobytes()
    assert Image.open(sheet).width > 2 * 256  # the source and round 1, side by side


def test_cot_file_is_followed_and_printed(tmp_path, capsys, sample) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_text(sample.cot.render())
    out = tmp_path / "out.png"
    code, io = _run(capsys, tmp_path, "--instruction", sample.instruction, "--out", str(out), "--cot-file",
                    str(plan), "--print-cot")
    assert code == 0, io.err
    box = ", ".join(map(str, sample.cot.traversal[0].box))
    assert f"task: {sample.cot.task}" in io.out and f"box [{box}]" in io.out and "meta-tasks: Replacement" in io.out
    meta = _sidecar(out)
    assert meta["think_text"] == sample.cot.render() and meta["cot_source"] == "file"


@pytest.mark.parametrize("extra, message", [
    (["--cot-file", "PLAN"], "plan.txt:8: bad target line"),
    (["--contact-sheet", "sheet.png"], "add --reflect"),
    (["--reflect", "--max-rounds", "0"], "--max-rounds (0) and --max-verdict-tokens (256) must be at least 1"),
    (["--replay", "elsewhere"], "add --session"),
])
def test_bad_reasoning_flags_are_one_line_errors(tmp_path, capsys, sample, extra, message) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_text(sample.cot.render().replace("\n- ", "\n* "))  # a target line without its dash
    extra = [str(plan) if a == "PLAN" else a for a in extra]
    code, io = _run(capsys, tmp_path, "--instruction", "x", "--out", str(tmp_path / "o.png"), *extra)
    assert code == 2 and message in io.err and len(io.err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("o.*"))
    assert not (tmp_path / "sheet.png").exists() and not (tmp_path / "elsewhere").exists()
