"""The edit CLI end to end on the tiny checkpoint, and its one-line errors for bad input (no file left behind)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from PIL import Image
from PIL.ExifTags import Base

from inference.edit_single import main
from tests.fixture_paths import TINY

FAST = ["--device", "cpu", "--dtype", "fp32", "--num-timesteps", "3"]


def _run(capsys, *args):
    code = main(["--model-path", str(TINY), *args])
    return code, capsys.readouterr()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L"])
def test_edit_writes_image_and_sidecar(tmp_path, capsys, mode):
    src = tmp_path / "in.png"
    Image.new(mode, (700, 300), 120 if mode in ("L", "P") else (10, 200, 30, 255)[: len(mode)]).save(src)
    out = tmp_path / "out.png"
    code, io = _run(capsys, "--image", str(src), "--instruction", "add a sun", "--out", str(out), *FAST)
    assert code == 0, io.err
    image = Image.open(out)
    assert image.mode == "RGB" and image.size == (256, 112)  # capped by the tiny model's 16x16 latent table
    meta = json.loads((tmp_path / "out.png.json").read_text())
    assert meta["instruction"] == "add a sun" and meta["settings"]["num_timesteps"] == 3
    assert meta["input_size"] == [700, 300] and meta["timings"]["total_s"] > 0
    assert meta["output"] == str(out) and meta["output_size"] == [256, 112] and meta["image"] == str(src)


def test_rotated_phone_photo_is_edited_upright(tmp_path, capsys):
    """A JPEG stored 700x300 with EXIF orientation 6 (shown rotated 90 degrees) is edited as the 300x700 it shows."""
    src = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[Base.Orientation] = 6
    Image.new("RGB", (700, 300), (200, 40, 40)).save(src, exif=exif)
    out = tmp_path / "out.png"
    code, io = _run(capsys, "--image", str(src), "--instruction", "add a sun", "--out", str(out), *FAST)
    assert code == 0, io.err
    assert Image.open(out).size == (112, 256)
    assert json.loads((tmp_path / "out.png.json").read_text())["input_size"] == [300, 700]


def test_outputs_get_the_umask_and_each_format_its_own_sidecar(tmp_path, capsys):
    """umask 002 (a shared group folder) -> 0664; other umasks: tests/test_file_modes.py."""
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "a.png")
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(j) for j in [
        {"image": "a.png", "instruction": "blue", "out": "o.png", "seed": 1},
        {"image": "a.png", "instruction": "blue", "out": "o.jpg", "seed": 2}]))
    old = os.umask(0o002)
    try:
        code, io = _run(capsys, "--batch", str(tmp_path / "jobs.jsonl"), *FAST)
    finally:
        os.umask(old)
    assert code == 0, io.err
    seeds = {name: json.loads((tmp_path / f"{name}.json").read_text())["seed"] for name in ("o.png", "o.jpg")}
    assert seeds == {"o.png": 1, "o.jpg": 2}
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["a.png", "jobs.jsonl", "o.jpg", "o.jpg.json", "o.png", "o.png.json"]  # no temporary left
    for name in ("o.png", "o.png.json", "o.jpg", "o.jpg.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o664, name


def test_batch_edits_in_one_load_and_reports_bad_jobs(tmp_path, capsys):
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "a.png")
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(j) for j in [
        {"image": "a.png", "instruction": "blue", "out": "a_out.png", "seed": 3},
        {"image": "missing.png", "instruction": "red", "out": "b_out.png"}]))
    code, io = _run(capsys, "--batch", str(tmp_path / "jobs.jsonl"), *FAST)
    assert code == 1 and "missing.png does not exist" in io.err
    assert json.loads((tmp_path / "a_out.png.json").read_text())["seed"] == 3
    assert not (tmp_path / "b_out.png").exists()


def _bad_inputs(tmp_path):
    good = tmp_path / "good.png"
    Image.effect_noise((64, 64), 50).convert("RGB").save(good)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    return {
        "missing image": (["--image", str(tmp_path / "nope.png")], "does not exist"),
        "empty image": (["--image", str(tmp_path / "empty.png")], "0 bytes"),
        "not an image": (["--image", str(tmp_path / "text.png")], "not an image"),
        "truncated": (["--image", str(tmp_path / "trunc.png")], "truncated or corrupt"),
        "empty instruction": (["--image", str(good), "--instruction", " "], "instruction is empty"),
        "unwritable out": (["--image", str(good), "--out", str(good / "o.png")], "cannot be created"),
        "bad model path": (["--image", str(good), "--model-path", str(tmp_path / "nomodel")], "does not exist"),
        "bad knob": (["--image", str(good), "--cfg-renorm-type", "weird"], "cfg_renorm_type"),
    }


@pytest.mark.parametrize("case", ["missing image", "empty image", "not an image", "truncated", "empty instruction",
                                  "unwritable out", "bad model path", "bad knob"])
def test_bad_input_is_one_line_error(tmp_path, capsys, case):
    extra, message = _bad_inputs(tmp_path)[case]
    args = ["--instruction", "x", "--out", str(tmp_path / "o.png"), *FAST]
    code = main([*(["--model-path", str(TINY)] if "--model-path" not in extra else []), *args, *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.png.json").exists()
