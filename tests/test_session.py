"""Sessions: continuing across calls equals in-process multi-turn editing, a crash loses no recorded turn, replays
reproduce every turn, and bad session folders are one-line errors that write nothing."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import inference.session as session_module
from inference.edit_single import main
from inference.session import Session, SessionTurn
from tests.fixture_paths import TINY

FAST = {"num_timesteps": 3, "vae_transform": (64, 32, 16), "vit_transform": (56, 28, 14), "max_think_token_n": 6}
CLI_FAST = ["--device", "cpu", "--dtype", "fp32", "--num-timesteps", "3", "--vae-transform", "64", "32", "16",
            "--vit-transform", "56", "28", "14", "--max-think-token-n", "6"]


@pytest.fixture(scope="module")
def reference(inferencer, source):
    """What one in-process multi-turn edit gives."""
    return inferencer.edit_turns(source, ["make it blue", "add a sun"], think=True, seed=5, **FAST)


def test_session_turns_across_cli_calls_equal_in_process_turns(tmp_path, capsys, source, reference) -> None:
    source.save(tmp_path / "in.png")
    folder = tmp_path / "session"
    first = ["--model-path", str(TINY), "--session", str(folder), "--think", "--seed", "5", *CLI_FAST]
    assert main([*first, "--image", str(tmp_path / "in.png"), "--instruction", "make it blue"]) == 0
    assert main([*first, "--instruction", "add a sun", "--out", str(tmp_path / "copy.png")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["turn"] for line in lines] == [1, 2]
    stored = json.loads((folder / "session.json").read_text())
    assert [t["instruction"] for t in stored["turns"]] == ["make it blue", "add a sun"]
    assert [t["input_image"] for t in stored["turns"]] == ["input.png", "turn-001.png"]
    assert [t["think_text"] for t in stored["turns"]] == [r.think_text for r in reference]
    for number, expected in enumerate(reference, 1):
        assert Image.open(folder / f"turn-{number:03d}.png").tobytes() == expected.image.tobytes()
    assert Image.open(tmp_path / "copy.png").tobytes() == reference[1].image.tobytes()

    assert main(["--model-path", str(TINY), "--session", str(folder), "--replay", str(tmp_path / "again"),
                 *CLI_FAST]) == 0
    report = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["turn"], r["identical"]) for r in report] == [(1, True), (2, True)]
    assert len(Session.open(tmp_path / "again").turns) == 2


def test_a_crash_mid_turn_leaves_the_recorded_turns_intact(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "s"
    _stored_session(folder)
    before = (folder / "session.json").read_bytes()
    second = SessionTurn(2, "turn-001.png", "add a sun", False, None, None, 0, {}, "turn-002.png")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patch:  # the image is written, then the crash hits the record
        patch.setattr(session_module, "atomic_write_json", crash)
        with pytest.raises(OSError):
            Session.open(folder).record(second, Image.new("RGB", (32, 32), (1, 1, 1)))
    assert (folder / "turn-002.png").is_file() and (folder / "session.json").read_bytes() == before
    assert len(Session.open(folder).turns) == 1  # turn 2 is not recorded; turn 1 is intact
    redone = Image.new("RGB", (32, 32), (2, 2, 2))
    Session.open(folder).record(second, redone)  # the rerun overwrites the unrecorded image
    assert [t.turn for t in Session.open(folder).turns] == [1, 2]
    assert Session.open(folder).image("turn-002.png").tobytes() == redone.tobytes()


def _stored_session(folder) -> None:
    image = Image.new("RGB", (32, 32), (9, 9, 9))
    turn = SessionTurn(1, "input.png", "make it blue", False, None, None, 0, {"num_timesteps": 3}, "turn-001.png")
    Session.open(folder).record(turn, image, first_input=image)


def _snapshot(root) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _bad_sessions(tmp_path):
    good = tmp_path / "in.png"
    Image.new("RGB", (32, 32)).save(good)
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    for name, damage in [("badjson", lambda s: "{not json"), ("nofield", lambda s: s.replace('"instruction"', '"x"')),
                         ("noimage", None), ("format", lambda s: s.replace("metacot-edit-session", "other"))]:
        _stored_session(tmp_path / name)
        path = tmp_path / name / "session.json"
        if damage is None:
            (tmp_path / name / "turn-001.png").unlink()
        else:
            path.write_text(damage(path.read_text()))
    _stored_session(tmp_path / "ok")
    return {
        "file": (["--session", str(tmp_path / "file.txt"), "--instruction", "x"], "is a file"),
        "foreign folder": (["--session", str(tmp_path / "other"), "--image", str(good), "--instruction", "x"],
                           "is not a session folder"),
        "bad json": (["--session", str(tmp_path / "badjson"), "--instruction", "x"], "not readable JSON"),
        "missing field": (["--session", str(tmp_path / "nofield"), "--instruction", "x"], "turn 1 lacks"),
        "missing image": (["--session", str(tmp_path / "noimage"), "--instruction", "x"], "is missing from"),
        "other format": (["--session", str(tmp_path / "format"), "--instruction", "x"], "is not a metacot-edit"),
        "image on existing": (["--session", str(tmp_path / "ok"), "--image", str(good), "--instruction", "x"],
                              "already has 1 turns"),
        "no image for new": (["--session", str(tmp_path / "new"), "--instruction", "x"], "no turns yet"),
        "no instruction": (["--session", str(tmp_path / "ok")], "instruction is empty"),
        "with reflect": (["--session", str(tmp_path / "ok"), "--instruction", "x", "--reflect"], "drop --reflect"),
        "replay into full": (["--session", str(tmp_path / "ok"), "--replay", str(tmp_path / "ok")],
                             "is not empty"),
        "replay nothing": (["--session", str(tmp_path / "new"), "--replay", str(tmp_path / "r")], "no turns to"),
    }


@pytest.mark.parametrize("case", ["file", "foreign folder", "bad json", "missing field", "missing image",
                                  "other format", "image on existing", "no image for new", "no instruction",
                                  "with reflect", "replay into full", "replay nothing"])
def test_bad_session_input_is_one_line_error_and_writes_nothing(tmp_path, capsys, case) -> None:
    args, message = _bad_sessions(tmp_path)[case]
    before = _snapshot(tmp_path)
    code = main(["--model-path", str(TINY), *args, *CLI_FAST])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert _snapshot(tmp_path) == before and not (tmp_path / "new").exists() and not (tmp_path / "r").exists()
