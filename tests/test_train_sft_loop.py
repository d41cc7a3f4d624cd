"""The SFT loop on CPU with the test-only stand-ins: learning, exact kill-and-resume, NaN guard, checkpoints."""

from __future__ import annotations

import json
import os

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
