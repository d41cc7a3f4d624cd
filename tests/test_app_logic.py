"""The web app's logic without a browser: settings controls, streaming from the model thread, cancellation, edit
sessions (multi-turn), understanding, text-to-image, and app.py's one-line errors (no gradio needed)."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest
from PIL import Image

import app
from inference.app_logic import (AppInputError, AppModel, EditSession, knob_overrides, resolve_device, resolve_dtype,
                                 settings_from_assignments, settings_knobs)
from inference.default_model import default_model_path
from inference.inferencer import BagelInferencer
from inference.settings import InferenceSettings

FAST = {"num_timesteps": 3, "max_think_token_n": 24, "vae_transform": (64, 32, 16), "vit_transform": (56, 28, 14)}
IMAGE = Image.new("RGB", (64, 48), (40, 90, 200))


@pytest.fixture
def model(tiny_bundle):
    return AppModel(BagelInferencer(tiny_bundle), "tiny")


def _last(updates):
    *_, last = updates
    return last


def test_knobs_cover_every_setting_and_parse_page_values():
    knobs = settings_knobs()
    defaults = InferenceSettings()
    assert {k.name for k in knobs} == set(defaults.to_dict()) - {"extra"}
    values = [k.shown_default for k in knobs]
    assert InferenceSettings.from_dict(knob_overrides(knobs, values)) == defaults
    by_name = {k.name: i for i, k in enumerate(knobs)}
    values[by_name["cfg_interval"]] = "0.2, 0.9"
    values[by_name["num_timesteps"]] = 7.0  # number boxes send floats
    values[by_name["vae_transform"]] = "128 64 16"
    overrides = knob_overrides(knobs, values)
    assert overrides["cfg_interval"] == (0.2, 0.9) and overrides["num_timesteps"] == 7
    assert overrides["vae_transform"] == (128, 64, 16)


@pytest.mark.parametrize("name, value, message", [
    ("cfg_interval", "0.4", "cfg interval: '0.4' is not valid; give a value like '0.4 1.0'"),
    ("num_timesteps", 2.5, "num timesteps: 2.5 is not valid"),
    ("cfg_renorm_type", "sideways", "cfg_renorm_type must be one of"),
    ("num_timesteps", 1, "num_timesteps must be >= 2"),
])
def test_bad_knob_values_are_one_line_errors(name, value, message):
    knobs = settings_knobs()
    values = [value if k.name == name else k.shown_default for k in knobs]
    with pytest.raises(AppInputError) as error:
        knob_overrides(knobs, values)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_command_line_starting_values():
    settings = settings_from_assignments(["num_timesteps=10", "cfg_interval=0.2 1", "do_sample=true"])
    assert (settings.num_timesteps, settings.cfg_interval, settings.do_sample) == (10, (0.2, 1.0), True)
    with pytest.raises(AppInputError, match="expected NAME=VALUE"):
        settings_from_assignments(["steps=3"])


def test_device_and_dtype_resolution():
    import torch

    auto = resolve_device("auto")
    assert auto == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("auto", "cpu") == "fp32" and resolve_dtype("auto", "cuda") == "bf16"
    assert resolve_dtype("bf16", "cpu") == "bf16"
    if not torch.cuda.is_available():
        with pytest.raises(AppInputError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_default_model_is_a_checkpoint_folder():
    assert (default_model_path() / "llm_config.json").is_file()


def test_stream_yields_each_piece_as_it_is_written(model):
    received = threading.Event()

    def call(on_text, on_step):
        for piece in ["Plan", ": blue", " sky"]:
            on_text(piece)
            assert received.wait(10)  # the next piece only after the page saw this one
            received.clear()
        on_step(1, 2)
        return "result"

    seen = []
    for text, status, result in model.stream(call, "thinking…"):
        seen.append((text, status, result))
        received.set()
    assert seen[:3] == [("Plan", "thinking…", None), ("Plan: blue", "thinking…", None),
                        ("Plan: blue sky", "thinking…", None)]
    assert seen[-1] == ("Plan: blue sky", "denoising: step 1/2", "result")


def test_stream_raises_model_errors_and_stops_when_the_page_leaves(model):
    def failing(on_text, on_step):
        raise ValueError("image too small")

    with pytest.raises(ValueError, match="image too small"):
        list(model.stream(failing, ""))

    finished = threading.Event()

    def endless(on_text, on_step):
        for _ in range(100_000):
            on_text("x")
            time.sleep(0.001)
        finished.set()

    updates = model.stream(endless, "")
    next(updates)
    updates.close()  # the page went away
    assert model._lock.acquire(timeout=10)  # the worker stopped at its next piece and let go of the model
    model._lock.release()
    assert not finished.is_set()


def test_edit_streams_the_plan_then_continues_with_history(model):
    library = model.inferencer
    first, second = library.edit_turns(IMAGE, ["make it red", "add a moon"], think=True, seed=3, **FAST)

    updates = list(model.edit(EditSession(), IMAGE, "make it red", True, 3, FAST))
    session, final = updates[-1]
    assert final.text == first.think_text and final.image.tobytes() == first.image.tobytes()
    assert final.status.startswith("turn 1: prefill") and "thinking" in final.status
    assert all(first.think_text.startswith(p.text) and p.image is None for _, p in updates[:-1])
    assert [caption for _, caption in session.history] == ["input", "1. make it red"]

    session, final = _last(model.edit(session, None, "add a moon", True, 3, FAST, continue_from_result=True))
    assert final.text == second.think_text and final.image.tobytes() == second.image.tobytes()
    assert len(session.history) == 3 and final.status.startswith("turn 2")


def test_edit_input_errors(model):
    with pytest.raises(AppInputError, match="upload an image"):
        next(model.edit(EditSession(), None, "x", False, 0, FAST))
    with pytest.raises(AppInputError, match="instruction is empty"):
        next(model.edit(EditSession(), IMAGE, "  ", False, 0, FAST))
    with pytest.raises(AppInputError, match="nothing to continue from"):
        next(model.edit(EditSession(), IMAGE, "x", False, 0, FAST, continue_from_result=True))


def test_an_unfinished_turn_cannot_be_continued(model):
    session, _ = _last(model.edit(EditSession(), IMAGE, "make it red", True, 0, FAST))
    updates = model.edit(session, None, "add a moon", True, 0, FAST, continue_from_result=True)
    next(updates)
    updates.close()  # left mid-turn: the contexts hold half a turn
    assert model._lock.acquire(timeout=30)
    model._lock.release()
    with pytest.raises(AppInputError, match="did not finish"):
        next(model.edit(session, None, "add a moon", True, 0, FAST, continue_from_result=True))


def test_understanding_and_text_to_image(model):
    library = model.inferencer
    answer = library.understand(IMAGE, "What colour?", think=True, **FAST)
    final = _last(model.understand(IMAGE, "What colour?", True, 0, FAST))
    assert (final.text, final.status) == (answer, "done")

    made = library.text_to_image("a red square", 48, 64, think=True, seed=1, **FAST)
    final = _last(model.text_to_image("a red square", 48, 64, True, 1, {**FAST, "cfg_img_scale": 2.0}))
    assert final.image.size == (64, 48) and final.image.tobytes() == made.image.tobytes()
    assert final.text == made.think_text
    assert model.max_image_side() == 256 and model.image_stride() == 16  # the tiny model's 16x16 latent table
    for height, width in [(40, 64), (48, 512)]:
        with pytest.raises(AppInputError, match="must be a multiple of 16 between 16 and 256"):
            next(model.text_to_image("a red square", height, width, False, 0, FAST))


def test_app_command_line_errors(monkeypatch, capsys, tmp_path):
    def run(*argv):
        code = app.main(list(argv))
        return code, capsys.readouterr().err.strip()

    code, err = run("--set", "steps=3")
    assert code == 2 and err.startswith("error: --set 'steps=3'") and "\n" not in err
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if gradio were not installed
    code, err = run()
    assert (code, err) == (1, app.MISSING_GRADIO)
    monkeypatch.setitem(sys.modules, "gradio", types.ModuleType("gradio"))
    code, err = run("--model-path", str(tmp_path / "nothing"), "--device", "cpu")
    assert code == 2 and "does not exist" in err and "\n" not in err
