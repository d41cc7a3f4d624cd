"""The flags the edit and eval entry points share: boolean forms, aliases, auto device/dtype, defaults in --help,
and the edit CLI's defaults (model folder under ckpts/, output under outputs/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import modeling.bagel.hub as hub
from inference import edit_single, eval_benchmark
from inference.cli_args import DTYPE_CHOICES, KNOB_HELP, resolve_device, resolve_dtype
from tests.fixture_paths import TINY

KNOB_FLAGS = ("--cfg-text-scale", "--cfg-img-scale", "--cfg-image-scale", "--max-think-token-n", "--max-think-tokens",
              "--do-sample", "--no-do-sample", "--batch-cfg", "--no-batch-cfg", "--compile-layers", "--cuda-graphs",
              "--think", "--no-think", "--device", "--dtype")


@pytest.mark.parametrize(("argv", "think", "sample", "batch_cfg"), [
    ([], False, False, True),
    (["--think", "--do-sample"], True, True, True),
    (["--think", "true", "--do-sample", "yes", "--batch-cfg", "false"], True, True, False),
    (["--think", "0", "--no-batch-cfg"], False, False, False),
    (["--think", "--no-think"], False, False, True),  # the last one wins, as with any flag
])
def test_booleans_take_switch_value_and_negated_forms(argv, think, sample, batch_cfg):
    args = edit_single.build_parser().parse_args(argv)
    assert (args.think, args.do_sample, args.batch_cfg) == (think, sample, batch_cfg)
    ev = eval_benchmark.parse_args(argv)
    assert ev.think == think
    # eval: an unset knob stays None so the editor's own default applies
    assert ev.do_sample == (sample if "--do-sample" in argv else None)
    assert ev.batch_cfg == (batch_cfg if any("batch-cfg" in a for a in argv) else None)


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_a_boolean_with_another_value_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as stop:
        edit_single.build_parser().parse_args(["--think", value])
    assert stop.value.code == 2 and "expected true or false" in capsys.readouterr().err


def test_aliases_and_flag_names_agree_across_entry_points():
    edit = edit_single.build_parser().parse_args(["--cfg-image-scale", "1.5", "--max-think-tokens", "8"])
    ev = eval_benchmark.parse_args(["--cfg-image-scale", "1.5", "--max-think-tokens", "8"])
    assert (edit.cfg_img_scale, edit.max_think_token_n) == (1.5, 8) == (ev.cfg_img_scale, ev.max_think_token_n)
    canonical = eval_benchmark.parse_args(["--cfg-img-scale", "1.5", "--max-think-token-n", "8"])
    assert vars(canonical) == vars(ev)


def test_help_shows_defaults_and_choices(capsys):
    text = edit_single.build_parser().format_help()
    for flag in KNOB_FLAGS:
        assert flag in text
    assert "(default: 4.0)" in text and "(default: auto)" in text and "{auto,bf16," in text
    with pytest.raises(SystemExit) as stop:
        eval_benchmark.parse_args(["--help"])
    text = capsys.readouterr().out
    assert stop.value.code == 0
    for flag in KNOB_FLAGS:
        assert flag in text
    assert "(default: 21tasks)" in text and "editor default: 4.0" in text and "data/bench/21tasks" in text


def test_choices_listed_in_help_are_the_codes():
    from inference.inferencer import DTYPES
    from modeling.diffusion.guidance import RENORM_TYPES

    assert set(DTYPE_CHOICES) == {"auto", *DTYPES}
    assert all(name in KNOB_HELP["cfg_renorm_type"] for name in RENORM_TYPES)


def test_auto_device_and_dtype():
    device = resolve_device("auto")
    assert device == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("auto", "cpu") == "fp32" and resolve_dtype("auto", "cuda:1") == "bf16"
    assert resolve_dtype("fp16", "cpu") == "fp16"  # an explicit flag always wins


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_without_cuda_is_one_line(tmp_path, capsys):
    image = tmp_path / "in.png"
    Image.new("RGB", (32, 32)).save(image)
    code = edit_single.main(["--model-path", str(TINY), "--image", str(image), "--instruction", "x",
                             "--out", str(tmp_path / "o" / "out.png"), "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "no CUDA GPU" in err and "--device auto or cpu" in err
    assert not (tmp_path / "o").exists()


@pytest.fixture
def ckpts(tmp_path, monkeypatch):
    """An empty ckpts/ root and a working directory of its own."""
    monkeypatch.setattr(hub, "CKPTS_DIR", tmp_path / "ckpts")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path / "ckpts"


def test_no_model_anywhere_says_how_to_download(ckpts, capsys):
    Image.new("RGB", (32, 32)).save("cat.png")
    assert edit_single.main(["--image", "cat.png", "--instruction", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bash scripts/download_ckpt.sh" in err and "--model-path" in err
    assert not Path("outputs").exists()  # nothing made for a command that failed


def test_defaults_fall_back_to_ckpts_bagel_and_write_under_outputs(ckpts, capsys):
    ckpts.mkdir()
    (ckpts / "bagel").symlink_to(TINY, target_is_directory=True)
    Image.new("RGB", (64, 48), (200, 30, 30)).save("cat.png")
    code = edit_single.main(["--image", "cat.png", "--instruction", "make it blue", "--num-timesteps", "2",
                             "--vae-transform", "64", "32", "16", "--vit-transform", "56", "28", "14"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"{ckpts / 'metacot'} not found; using {ckpts / 'bagel'}" in err
    meta = json.loads(Path("outputs/cat_edited.png.json").read_text())
    assert Image.open("outputs/cat_edited.png").mode == "RGB"
    expected_device = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert meta["model_path"] == str(ckpts / "bagel") and meta["device"] == expected_device
    assert meta["dtype"] == ("bf16" if torch.cuda.is_available() else "fp32")
