"""The SFT loop on CPU with the test-only stand-ins: learning, exact kill-and-resume, NaN guard, checkpoints (and
damaged ones: each kind of damage moves the newest aside and resumes from the previous intact one)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil

import pytest
import torch

from test_train_standin import SyntheticStream, standin_components
from train.common.checkpoint import list_complete_checkpoints
from train.common.config import from_dict
from train.common.distributed import init_distributed
from train.common.metrics import drop_rows_after
from train.common.nan_guard import TrainingDiverged
from train.sft.config import SFTConfig
from train.sft.loop import run_sft


def tiny_config(output_dir: str, **sections: dict) -> SFTConfig:
    raw = {
        "output_dir": output_dir,
        "model": {"random_init_configs": "stand-in"},
        "data": {"mix": "synthetic"},
        "optim": {"lr": 1e-2, "warmup_steps": 2, "schedule": "cosine", "min_lr": 1e-3},
        "parallel": {"param_dtype": "float32", "activation_checkpointing": True},
        "train": {"total_steps": 6, "device": "cpu", "ema_decay": 0.9, "max_consecutive_bad_steps": 3},
        "checkpoint": {"every": 3, "keep_last": 2},
        "logging": {"every": 2, "tensorboard": False},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return from_dict(SFTConfig, raw)


@pytest.fixture(scope="module")
def dist_info():
    torch.set_num_threads(1)
    return init_distributed("cpu")


def _weights(parts) -> dict[str, torch.Tensor]:
    return {k: v.full_tensor().clone() for k, v in parts.model.state_dict().items()}


class Killed(Exception):
    pass


def test_twenty_steps_lower_the_loss(tmp_path, dist_info) -> None:
    cfg = tiny_config(str(tmp_path), train={"total_steps": 20}, optim={"schedule": "constant", "warmup_steps": 0},
                      checkpoint={"every": 100})
    summary = run_sft(cfg, standin_components(), dist_info)
    losses = [summary.losses[s] for s in range(1, 21)]
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.8 * first, losses
    rows = [json.loads(line) for line in open(tmp_path / "logs" / "metrics.jsonl")]
    assert [r["step"] for r in rows] == list(range(2, 21, 2))
    assert {"edit_cot/ce", "understanding/mse", "grad_norm", "lr", "tokens_per_s"} <= set(rows[-1])


def test_kill_and_resume_equals_uninterrupted(tmp_path, dist_info) -> None:
    full_cfg = tiny_config(str(tmp_path / "full"))
    full_parts = standin_components()
    full = run_sft(full_cfg, full_parts, dist_info)
    full_weights = _weights(full_parts)

    cut_cfg = tiny_config(str(tmp_path / "cut"))

    def kill_at_5(step: int, _result) -> None:
        if step == 5:  # after the step-3 checkpoint: steps 4 and 5 are lost
            raise Killed

    with pytest.raises(Killed):
        run_sft(cut_cfg, standin_components(), dist_info, on_step=kill_at_5)
    resumed_parts = standin_components()
    resumed = run_sft(cut_cfg, resumed_parts, dist_info)

    assert resumed.start_step == 3
    assert [resumed.losses[s] for s in (4, 5, 6)] == [full.losses[s] for s in (4, 5, 6)]
    resumed_weights = _weights(resumed_parts)
    for name, value in full_weights.items():
        assert torch.equal(resumed_weights[name], value), name
    steps = [step for step, _ in list_complete_checkpoints(str(tmp_path / "cut" / "checkpoints"))]
    assert steps == [3, 6]  # keep_last=2
    # the killed run logged step 4 after its step-3 checkpoint; the resumed run logs it again, once
    assert [row["step"] for row in _metrics(tmp_path / "cut")] == [2, 4, 6]


def _metrics(output_dir) -> list[dict]:
    return [json.loads(line) for line in open(output_dir / "logs" / "metrics.jsonl")]


def test_logged_loss_equals_its_logged_parts_over_the_window(tmp_path, dist_info) -> None:
    cfg = tiny_config(str(tmp_path), loss={"ce_weight": 0.5, "mse_weight": 2.0}, logging={"every": 3})
    sums: dict[int, list[float]] = {}
    run_sft(cfg, standin_components(), dist_info, on_step=lambda step, result: sums.update({step: result.sums.totals}))
    rows = _metrics(tmp_path)
    assert [row["step"] for row in rows] == [3, 6]
    for row in rows:
        window = [sums[s] for s in range(row["step"] - 2, row["step"] + 1)]  # ce_sum, ce_n, mse_sum, mse_n
        ce = sum(w[0] for w in window) / sum(w[1] for w in window)
        mse = sum(w[2] for w in window) / sum(w[3] for w in window)
        assert row["ce"] == pytest.approx(ce, rel=1e-12) and row["mse"] == pytest.approx(mse, rel=1e-12)
        assert row["loss"] == 0.5 * row["ce"] + 2.0 * row["mse"]


def test_rows_after_the_resume_step_and_cut_lines_are_dropped(tmp_path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": s / 10}) + "\n" for s in (2, 4, 6)) + '{"step": 8, "lo')
    assert drop_rows_after(str(path), 4) == 2
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [2, 4]
    assert drop_rows_after(str(path), 4) == 0 and drop_rows_after(str(tmp_path / "none.jsonl"), 0) == 0


def test_incomplete_checkpoint_is_ignored_on_resume(tmp_path, dist_info) -> None:
    cfg = tiny_config(str(tmp_path), train={"total_steps": 3})
    run_sft(cfg, standin_components(), dist_info)
    fake = tmp_path / "checkpoints" / "step_00000009"
    fake.mkdir()  # a folder from a save killed before its COMPLETE marker
    (fake / "train_state.json").write_text("{}")
    longer = tiny_config(str(tmp_path), train={"total_steps": 4})
    summary = run_sft(longer, standin_components(), dist_info)
    assert summary.start_step == 3 and summary.final_step == 4


class PoisonedStream(SyntheticStream):
    """Batches at the given positions carry NaN pixels, so their loss is NaN."""

    def __init__(self, bad_positions: set[int]) -> None:
        super().__init__()
        self.bad_positions = bad_positions

    def __iter__(self):
        for batch in super().__iter__():
            if self.position - 1 in self.bad_positions:
                batch["padded_images"] = torch.full_like(batch["padded_images"], float("nan"))
            yield batch


def test_nan_step_is_skipped_and_counted(tmp_path, dist_info) -> None:
    cfg = tiny_config(str(tmp_path), train={"total_steps": 4})
    parts = standin_components()
    parts.data = PoisonedStream({2})
    seen: dict[int, tuple[bool, dict]] = {}
    parts_weights = lambda: {k: v.clone() for k, v in _weights(parts).items()}  # noqa: E731
    seen[0] = (True, {})

    def record(step: int, result) -> None:
        seen[step] = (result.applied, parts_weights())

    summary = run_sft(cfg, parts, dist_info, on_step=record)
    assert [seen[s][0] for s in (1, 2, 3, 4)] == [True, True, False, True]
    assert summary.skipped_steps == 1
    for name, before in seen[2][1].items():
        assert torch.equal(seen[3][1][name], before), name  # the NaN step changed nothing
    assert all(torch.isfinite(v).all() for v in seen[4][1].values())


def test_too_many_bad_steps_stop_with_a_checkpoint(tmp_path, dist_info) -> None:
    cfg = tiny_config(str(tmp_path), train={"total_steps": 10})
    parts = standin_components()
    parts.data = PoisonedStream(set(range(1, 100)))
    with pytest.raises(TrainingDiverged, match="3 consecutive steps"):
        run_sft(cfg, parts, dist_info)
    steps = [step for step, _ in list_complete_checkpoints(str(tmp_path / "checkpoints"))]
    assert steps == [3, 4]  # the regular step-3 save, then the stop save
    saved = json.load(open(os.path.join(tmp_path, "checkpoints", "step_00000004", "train_state.json")))
    assert saved["extra"]["nan_guard"] == {"skipped_total": 3, "consecutive": 3}


def _flip_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {  # name -> (file in the newest checkpoint, how it is damaged, what the log line says)
    "truncated_shard": ("__0_0.distcp", _truncate, "__0_0.distcp: "),
    "bit_flipped_shard": ("__0_0.distcp", _flip_byte, "__0_0.distcp: checksum differs"),
    "broken_train_state": ("train_state.json", lambda p: p.write_text('{"step": 6, '), "train_state.json: "),
    "truncated_rank_state": ("rank_00000.pt", _truncate, "rank_00000.pt: "),
    "missing_file": (".metadata", lambda p: p.unlink(), ".metadata: missing"),
    "broken_manifest": ("MANIFEST.json", lambda p: p.write_text("{not json"), "MANIFEST.json: unreadable"),
}


@pytest.fixture(scope="module")
def six_step_run(tmp_path_factory, dist_info):
    """A finished 6-step run with checkpoints at steps 3 and 6, and its losses."""
    root = tmp_path_factory.mktemp("six")
    summary = run_sft(tiny_config(str(root)), standin_components(), dist_info)
    return root, summary.losses


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_newest_checkpoint_is_moved_aside_and_the_previous_resumes(tmp_path, dist_info, six_step_run,
                                                                            damage, caplog) -> None:
    shutil.copytree(six_step_run[0], tmp_path, dirs_exist_ok=True)
    name, harm, said = DAMAGE[damage]
    ckpts = tmp_path / "checkpoints"
    harm(ckpts / "step_00000006" / name)
    caplog.set_level(logging.WARNING, logger="train.common.checkpoint")
    resumed = run_sft(tiny_config(str(tmp_path)), standin_components(), dist_info)

    assert resumed.start_step == 3  # from the intact step-3 checkpoint, exactly as the first run went on
    assert [resumed.losses[s] for s in (4, 5, 6)] == [six_step_run[1][s] for s in (4, 5, 6)]
    aside = ckpts / "step_00000006.damaged-1"
    assert aside.is_dir() and (aside / "COMPLETE").is_file()  # kept, nothing deleted
    assert (aside / name).exists() == (damage != "missing_file")
    assert [s for s, _ in list_complete_checkpoints(str(ckpts))] == [3, 6]  # step 6 saved again, intact
    lines = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(lines) == 1 and f"step_00000006 is damaged: {said}" in lines[0], lines
    assert "moved to step_00000006.damaged-1" in lines[0]


def test_checkpoint_without_manifest_still_loads(tmp_path, dist_info, six_step_run, caplog) -> None:
    """Checkpoints written before manifests existed: loaded unverified, with a note."""
    shutil.copytree(six_step_run[0], tmp_path, dirs_exist_ok=True)
    (tmp_path / "checkpoints" / "step_00000006" / "MANIFEST.json").unlink()
    caplog.set_level(logging.WARNING, logger="train.common.checkpoint")
    resumed = run_sft(tiny_config(str(tmp_path), train={"total_steps": 7}), standin_components(), dist_info)
    assert resumed.start_step == 6 and resumed.final_step == 7
    assert any("has no MANIFEST.json" in r.getMessage() for r in caplog.records)


def test_manifest_records_every_file_of_a_checkpoint(six_step_run) -> None:
    folder = six_step_run[0] / "checkpoints" / "step_00000003"
    manifest = json.loads((folder / "MANIFEST.json").read_text())["files"]
    on_disk = {p.name for p in folder.iterdir()} - {"MANIFEST.json", "COMPLETE"}
    assert set(manifest) == on_disk and {".metadata", "train_state.json", "rank_00000.pt"} <= on_disk
    for name, entry in manifest.items():  # sha256 over the sha256 digests of 64 MiB blocks
        data = (folder / name).read_bytes()
        blocks = [data[i:i + (64 << 20)] for i in range(0, max(len(data), 1), 64 << 20)]
        top = hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blocks)).hexdigest()
        assert entry == {"size": len(data), "sha256_blocks": top}, name


def test_export_refuses_a_damaged_checkpoint(tmp_path, six_step_run, capsys) -> None:
    from train.sft.export import main as export_main

    shutil.copytree(six_step_run[0] / "checkpoints" / "step_00000006", tmp_path / "step_00000006")
    _flip_byte(tmp_path / "step_00000006" / "rank_00000.pt")
    assert export_main([str(tmp_path / "step_00000006"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("is damaged: rank_00000.pt: checksum differs from MANIFEST.json (content changed); "
                        "export an older step folder") and "\n" not in err
    assert not (tmp_path / "out").exists()
