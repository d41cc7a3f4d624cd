"""A packed batch streamed from real sample files (parquet shards) runs through the model's training forward."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from data.dataset_info import DATASET_INFO, DatasetInfo, register_dataset
from data.demo_records import demo_metacot
from data.mix_config import parse_mix
from data.packed_dataset import DataStateTracker, PackedMixDataset, make_loader
from data.parquet_writer import write_parquet_shards
from tests.fixture_paths import TINY

CASE = TINY / "cases" / "train_forward"
pytestmark = pytest.mark.skipif(not CASE.is_dir(), reason="BAGEL tiny reference fixtures not present")


def sample_rows() -> list[dict]:
    """Records of every trained kind built from the reference case's image files and texts."""
    texts = json.loads((CASE / "case.json").read_text())["texts"]
    names = ("vlm_image", "t2i_image", "edit_source", "edit_target")
    png = {name: (CASE / f"{name}.png").read_bytes() for name in names}
    turns = [{"role": "user", "text": texts["vlm_question"]}, {"role": "assistant", "text": texts["vlm_answer"]}]
    edit = {"source_image": png["edit_source"], "target_image": png["edit_target"],
            "instruction": texts["edit_instruction"]}
    return [
        {"id": "vlm", "kind": "understanding", "source_image": png["vlm_image"], "conversation": turns},
        {"id": "t2i", "kind": "t2i", "instruction": texts["t2i_caption"], "target_image": png["t2i_image"]},
        {"id": "edit", "kind": "edit", **edit},
        {"id": "edit_cot", "kind": "edit_cot", "cot": demo_metacot(0).to_dict(), **edit},
        {"id": "text", "kind": "text", "conversation": turns},
    ]


def test_streamed_batch_runs_through_training_forward(tmp_path: Path) -> None:
    from modeling.bagel.loader import load_bagel

    bundle = load_bagel(TINY)
    write_parquet_shards(sample_rows(), str(tmp_path), row_group_size=2)
    register_dataset(DatasetInfo("fixture_files", "parquet", (str(tmp_path),)), overwrite=True)
    try:
        mix = parse_mix({
            "seed": 3,
            "tokens": {"expected_num_tokens": 2000, "max_num_tokens": 2000, "max_num_tokens_per_sample": 2000},
            "packing": {"vit_max_num_patch_per_side": 16, "max_latent_size": 16},
            "groups": {"all": {"datasets": ["fixture_files"], "weight": 1.0, "shuffle": False,
                               "vae_transform": [48, 32, 16], "vit_transform": [56, 28, 14]}},
        })
    finally:
        DATASET_INFO.pop("fixture_files")
    ids = bundle.special_tokens
    special = {"bos_token_id": ids.bos, "eos_token_id": ids.eos, "start_of_image": ids.start_of_image,
               "end_of_image": ids.end_of_image}
    dataset = PackedMixDataset(mix, bundle.tokenizer, special)
    tracker = DataStateTracker()
    batch = next(iter(make_loader(dataset)))
    tracker.update(batch)
    assert set(batch["sample_ids"]) == {"edit", "edit_cot", "t2i", "text", "vlm"}

    with torch.no_grad():
        batch["padded_latent"] = bundle.vae.encode(batch.pop("padded_images"))
    model = bundle.model.train()
    losses = model.forward_train(batch)
    assert losses.ce.shape == batch["ce_loss_indexes"].shape and losses.ce.numel() > 0
    assert losses.mse.shape == (batch["mse_loss_indexes"].numel(), 64) and losses.mse.numel() > 0
    assert torch.isfinite(losses.ce).all() and torch.isfinite(losses.mse).all()
    (losses.ce.mean() + losses.mse.mean()).backward()
    assert torch.isfinite(model.vae2llm.weight.grad).all() and model.vae2llm.weight.grad.abs().sum() > 0
