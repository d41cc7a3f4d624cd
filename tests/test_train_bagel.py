"""The SFT trainer on the real (tiny) BAGEL and the real data pipeline, on CPU.

- a killed run resumed from its checkpoint gives the same losses and weights (model RNG, VAE sampling and the
  packed-mix data state all restored);
- the exported EMA folder loads with ``load_bagel`` and edits an image;
- two FSDP ranks whose batches differ in modality (one without ViT tokens or image targets) train without hanging.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from PIL import Image
from safetensors.torch import load_file

from data.dataset_info import DatasetInfo, register_dataset
from data.demo_records import demo_records
from data.parquet_writer import write_parquet_shards
from modeling.bagel.loader import load_bagel
from train.common.config import from_dict
from train.common.distributed import init_distributed
from train.sft.build import build_sft_components
from train.sft.config import SFTConfig
from train.sft.export import export_checkpoint
from train.sft import main as sft_main
from train.sft.loop import run_sft
from tests.fixture_paths import TINY as TINY_PATH

TINY = str(TINY_PATH)
TRANSFORMS = {"vae_transform": [64, 32, 16], "vit_transform": [56, 28, 14]}  # fit the tiny position tables


def write_demo_mix(root: Path, kinds: dict[str, str], tokens: int) -> str:
    """Parquet shards of demo records per group (registered under unique names) and a mix YAML over them."""
    groups = {}
    for group, kind in kinds.items():
        name = f"train_test_{root.name}_{group}"
        write_parquet_shards(demo_records(24, kinds=(kind,), size_range=(40, 64), seed=len(group)),
                             str(root / group), rows_per_shard=12, row_group_size=4)
        register_dataset(DatasetInfo(name, "parquet", (str(root / group),)), overwrite=True)
        groups[group] = {"datasets": [name], "weight": 1.0, **TRANSFORMS}
    mix = {"seed": 3, "tokens": {"expected_num_tokens": tokens, "max_num_tokens": 480,
                                 "max_num_tokens_per_sample": 480},
           "packing": {"vit_max_num_patch_per_side": 16, "max_latent_size": 16}, "groups": groups}
    path = root / "mix.yaml"
    path.write_text(yaml.safe_dump(mix))
    return str(path)


def bagel_config(output_dir: str, mix: str, **train) -> SFTConfig:
    return from_dict(SFTConfig, {
        "output_dir": output_dir,
        "model": {"model_dir": TINY, "vae_dtype": "float32"},
        "data": {"source": "mix", "mix": mix, "num_workers": 0},
        "optim": {"lr": 1e-3, "warmup_steps": 0},
        "parallel": {"param_dtype": "float32", "activation_checkpointing": True},
        "train": {"total_steps": 4, "device": "cpu", "ema_decay": 0.5, **train},
        "checkpoint": {"every": 2, "keep_last": 2},
        "logging": {"every": 2, "tensorboard": False},
    })


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> str:
    return write_demo_mix(tmp_path_factory.mktemp("edit_mix"), {"edit_cot": "edit_cot", "understanding":
                                                                 "understanding"}, tokens=120)


@pytest.fixture(scope="module")
def dist_info():
    torch.set_num_threads(1)
    return init_distributed("cpu")


class Killed(Exception):
    pass


def test_resume_export_and_edit_on_tiny_bagel(tmp_path, mix, dist_info) -> None:
    # EMA warm-up on: its update count must survive the resume and stay out of the offline export
    full_cfg = bagel_config(str(tmp_path / "full"), mix, ema_warmup=True)
    full_parts = build_sft_components(full_cfg, dist_info)
    full = run_sft(full_cfg, full_parts, dist_info)
    full_weights = {k: v.full_tensor().clone() for k, v in full_parts.model.state_dict().items()}

    cut_cfg = bagel_config(str(tmp_path / "cut"), mix, ema_warmup=True)

    def kill_at_3(step: int, _result) -> None:
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        run_sft(cut_cfg, build_sft_components(cut_cfg, dist_info), dist_info, on_step=kill_at_3)
    parts = build_sft_components(cut_cfg, dist_info)
    resumed = run_sft(cut_cfg, parts, dist_info)
    assert resumed.start_step == 2
    assert [resumed.losses[s] for s in (3, 4)] == [full.losses[s] for s in (3, 4)]
    for name, value in parts.model.state_dict().items():
        assert torch.equal(value.full_tensor(), full_weights[name]), name

    exported = tmp_path / "cut" / "export" / "final"
    bundle = load_bagel(exported)
    initial = load_bagel(TINY).model.state_dict()
    trained = {k: v.full_tensor() for k, v in parts.model.state_dict().items()}
    name = "language_model.model.layers.0.mlp_moe_gen.down_proj.weight"
    got = bundle.model.state_dict()[name].float()
    # EMA (decay 0.5, warm-up 0.1, 0.18, 0.25, 0.31) over 4 steps: between the initial and trained weights
    assert not torch.equal(got, trained[name].bfloat16().float()) and not torch.equal(got, initial[name])
    assert (got - trained[name]).abs().max() < (initial[name] - trained[name]).abs().max()

    offline = tmp_path / "offline"
    export_checkpoint(str(tmp_path / "cut" / "checkpoints" / "step_00000004"), str(offline))
    from_checkpoint, in_run = load_file(offline / "ema.safetensors"), load_file(exported / "ema.safetensors")
    assert from_checkpoint.keys() == in_run.keys()
    assert all(torch.equal(from_checkpoint[k], in_run[k]) for k in in_run)
    full_export = load_file(tmp_path / "full" / "export" / "final" / "ema.safetensors")
    assert all(torch.equal(full_export[k], in_run[k]) for k in in_run)  # the resumed EMA equals the uninterrupted

    from inference.inferencer import BagelInferencer  # noqa: PLC0415 (only this test needs inference)
    image = Image.open(Path(TINY) / "cases" / "edit" / "input.png").convert("RGB")
    result = BagelInferencer(load_bagel(exported, dtype=torch.float32)).edit(
        image, "Make the sky blue.", num_timesteps=3, vae_transform=(64, 32, 16), vit_transform=(56, 28, 14))
    assert result.image.size == image.size


def test_validation_grid_of_edits_with_cot(tmp_path, mix, dist_info) -> None:
    prompts = tmp_path / "prompts.jsonl"
    source = Path(TINY) / "cases" / "edit" / "input.png"
    prompts.write_text(f'{{"image": "{source}", "instruction": "Make the sky blue.", "think": true}}\n'
                       f'{{"image": "{source}", "instruction": "Add clouds.", "think": false}}\n')
    cfg = bagel_config(str(tmp_path / "run"), mix, total_steps=2)
    cfg.validation.every, cfg.validation.prompts = 2, str(prompts)
    cfg.validation.inference = {"num_timesteps": 2, "max_think_token_n": 4, "vae_transform": [64, 32, 16],
                                "vit_transform": [56, 28, 14]}
    run_sft(cfg, build_sft_components(cfg, dist_info), dist_info)
    out = tmp_path / "run" / "validation" / "step_00000002"
    grid = Image.open(out / "grid.png")
    assert grid.height == 2 * 256 and grid.width == 2 * 256  # two rows of [source | edit] of the 64x64 input
    notes = (out / "cot.md").read_text()
    assert "Make the sky blue." in notes and "(no thinking)" in notes


def test_random_init_on_the_synthetic_workload(tmp_path, dist_info) -> None:
    """The benchmark / scaling path: weights drawn from a configs JSON, batches from the synthetic edit workload."""
    tiny = Path(TINY)
    configs = {"llm_config.json": json.loads((tiny / "llm_config.json").read_text()),
               "vit_config.json": json.loads((tiny / "vit_config.json").read_text()),
               "bagel_config (app.py)": json.loads((tiny / "bagel_config.json").read_text()),
               "ae_params (load_ae)": {k: v for k, v in json.loads((tiny / "ae_config.json").read_text()).items()
                                       if not k.startswith("_")},
               "tokenizer": json.loads((tiny / "special_token_ids.json").read_text())}
    (tmp_path / "configs.json").write_text(json.dumps(configs))
    cfg = from_dict(SFTConfig, {
        "output_dir": str(tmp_path / "run"),
        "model": {"random_init_configs": str(tmp_path / "configs.json"), "llm_layers": 1, "vae_dtype": "float32"},
        "data": {"source": "synthetic_edit", "synthetic": {"samples_per_batch": 2, "text_tokens": 24,
                                                            "vit_side": 42, "vae_side": 48, "vocab_limit": 480}},
        "parallel": {"param_dtype": "float32"},
        "train": {"total_steps": 2, "device": "cpu"},
        "logging": {"every": 1, "tensorboard": False},
    })
    parts = build_sft_components(cfg, dist_info)
    summary = run_sft(cfg, parts, dist_info)
    assert len(parts.model.language_model.model.layers) == 1
    assert all(math.isfinite(v) for v in summary.losses.values()) and len(summary.losses) == 2


def _two_rank_worker(rank: int, port: int, root: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    info = init_distributed("cpu")
    # One sample per batch, half t2i (no ViT) and half understanding (no image target): ranks disagree often.
    mix = write_demo_mix(Path(root) / f"data_{rank}", {"t2i": "t2i", "understanding": "understanding"}, tokens=1)
    cfg = bagel_config(os.path.join(root, "run"), mix, total_steps=4)
    parts = build_sft_components(cfg, info)
    parts.data = ModalityRecorder(parts.data)
    summary = run_sft(cfg, parts, info)
    assert all(torch.isfinite(torch.tensor(v)) for v in summary.losses.values())
    torch.save(parts.data.seen, os.path.join(root, f"modalities_{rank}.pt"))
    dist.barrier()  # leave together: the store host (rank 0) must not exit while a peer still talks to it
    dist.destroy_process_group()


class ModalityRecorder:
    """Passes a stream through, recording per batch whether it had real ViT tokens and image targets."""

    def __init__(self, stream) -> None:
        self.stream, self.seen = stream, []

    def __iter__(self):
        for batch in self.stream:
            self.seen.append(("vit_padding" not in batch["dataset_name"], batch["mse_loss_indexes"].numel() > 0))
            yield batch

    def state_dict(self):
        return self.stream.state_dict()

    def load_state_dict(self, state) -> None:
        self.stream.load_state_dict(state)


def test_two_ranks_with_different_modalities_do_not_hang(tmp_path) -> None:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    context = mp.start_processes(_two_rank_worker, args=(port.getsockname()[1], str(tmp_path)), nprocs=2,
                                 join=False, start_method="spawn")
    port.close()
    deadline = time.monotonic() + 240
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("2-rank run did not finish in 240 s: ranks issued mismatched collectives")
    logged = [line for line in open(tmp_path / "run" / "logs" / "metrics.jsonl")]
    assert len(logged) == 2
    seen = [torch.load(tmp_path / f"modalities_{rank}.pt") for rank in (0, 1)]
    disagree = [(a[0] != b[0], a[1] != b[1]) for a, b in zip(*seen)]
    assert any(vit for vit, _ in disagree) and any(target for _, target in disagree), seen


def test_sft_entry_stops_with_one_line_when_no_sample_fits(tmp_path, dist_info, monkeypatch, capsys) -> None:
    """The public entry, a loader worker process, every sample over the per-sample cap: one line, exit 1, no loop."""
    rows = demo_records(6, kinds=("understanding",), size_range=(40, 64), seed=1)
    write_parquet_shards(rows, str(tmp_path / "data" / "shapes_edit" / "understanding"), row_group_size=2)
    mix = {"max_consecutive_skips": 40, "tokens": {"expected_num_tokens": 10, "max_num_tokens": 10,
                                                   "max_num_tokens_per_sample": 10},  # below any sample
           "packing": {"vit_max_num_patch_per_side": 16, "max_latent_size": 16},
           "groups": {"u": {"datasets": ["shapes_edit_understanding"], "weight": 1.0, **TRANSFORMS}}}
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(mix))
    monkeypatch.setenv("METACOT_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setattr(sft_main.dist, "destroy_process_group", lambda: None)  # keep the test session's group
    repo = Path(__file__).resolve().parents[1]
    code = sft_main.main([str(repo / "configs" / "sft" / "tiny_cpu.yaml"), f"output_dir={tmp_path / 'run'}",
                          f"model.model_dir={TINY}", "data.source=mix", f"data.mix={tmp_path / 'mix.yaml'}",
                          "data.num_workers=1", "train.total_steps=2"])
    err = capsys.readouterr().err
    assert code == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("[rank 0] data error: data worker 0 of 1: no usable sample in 40 consecutive rows of "
                           "datasets [shapes_edit_understanding] (skipped: too_long 40); samples had "), last
    assert "tokens.max_num_tokens_per_sample is 10" in last and "Traceback" not in err
