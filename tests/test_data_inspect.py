"""The inspection tools: statistics of a mix, dumped batches (images + text), the loader benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data.dataset_info import DATASET_INFO, DatasetInfo, register_dataset
from data.demo_records import BYTE_SPECIAL_TOKENS, ByteTokenizer, demo_records
from data.inspect_mix import dump_batches, format_statistics, mix_statistics, unpatchify
from data.loader_bench import measure_loader
from data.mix_config import MixConfig, parse_mix
from data.packed_dataset import PackedMixDataset
from data.parquet_writer import write_parquet_shards
from data.transforms import flattened_position_ids, patchify


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> MixConfig:
    root = tmp_path_factory.mktemp("inspect")
    write_parquet_shards(demo_records(20, kinds=("edit", "understanding"), seed=4), str(root), row_group_size=3)
    register_dataset(DatasetInfo("inspect_demo", "parquet", (str(root),)), overwrite=True)
    try:
        return parse_mix({
            "tokens": {"expected_num_tokens": 500, "max_num_tokens": 600, "max_num_tokens_per_sample": 600},
            "packing": {"vit_max_num_patch_per_side": 16, "max_latent_size": 16},
            "groups": {"g": {"datasets": {"inspect_demo": 17}, "weight": 1.0,
                             "condition_dropout": {"text": 0, "vit": 0, "vae": 0},
                             "vae_transform": [64, 32, 16], "vit_transform": [56, 28, 14]}},
        })
    finally:
        DATASET_INFO.pop("inspect_demo")


def test_statistics(mix: MixConfig) -> None:
    (row,) = mix_statistics(mix)
    assert row["rows_used"] == 17 and row["units"] == 6 and row["files"] == 1 and row["group_share"] == 1.0
    assert "inspect_demo" in format_statistics([row])


def test_unpatchify_inverts_patchify() -> None:
    pixels = torch.rand(3, 28, 42)
    positions = flattened_position_ids(2, 3, 16)
    assert torch.equal(unpatchify(patchify(pixels, 14), positions, 16, 14), pixels)


def test_dump_batches(mix: MixConfig, tmp_path: Path) -> None:
    (folder,) = dump_batches(mix, ByteTokenizer(), BYTE_SPECIAL_TOKENS, str(tmp_path), num_batches=1)
    summary = json.loads((Path(folder) / "summary.json").read_text())
    text = (Path(folder) / "sequence.txt").read_text()
    n_images = sum(1 for m in summary["attn_modes"] if m in ("full", "noise"))
    pngs = sorted(p.name for p in Path(folder).glob("*.png"))
    assert len(pngs) == n_images and not list(Path(folder).glob("*.tmp"))
    assert text.count("=== sample") == len(summary["sample_lens"]) and "CE on this segment" in text
    assert "noised target, MSE" in text and "Make the" in text
    vit = np.asarray(Image.open(Path(folder) / "vit_0.png"))
    assert vit.shape[0] % 14 == 0 and vit.shape[1] % 14 == 0


def test_measure_loader(mix: MixConfig) -> None:
    dataset = PackedMixDataset(mix, ByteTokenizer(), BYTE_SPECIAL_TOKENS)
    result = measure_loader(dataset, num_batches=3, warmup_batches=1)
    assert result.batches == 3 and result.tokens >= 3 * 500 and result.samples >= 3
    assert result.tokens_per_s > 0 and result.samples_per_s > 0


def test_hub_download_targets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    from data.hub_download import download_dataset, registered_target

    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **kw: calls.append(kw) or kw["local_dir"])
    assert download_dataset("org/set", str(tmp_path), ["data/*.parquet"]) == str(tmp_path)
    assert calls == [{"repo_id": "org/set", "repo_type": "dataset", "local_dir": str(tmp_path),
                      "allow_patterns": ["data/*.parquet"], "revision": None}]
    monkeypatch.setenv("METACOT_DATA_ROOT", str(tmp_path))
    register_dataset(DatasetInfo("hub_demo", "jsonl", ("hub/demo/*.jsonl",), hf_repo="org/demo",
                                 hf_allow_patterns=("*.jsonl", "images/*")), overwrite=True)
    try:
        assert registered_target("hub_demo") == ("org/demo", str(tmp_path / "hub" / "demo"), ["*.jsonl", "images/*"])
    finally:
        DATASET_INFO.pop("hub_demo")
    with pytest.raises(ValueError, match="names no Hugging Face repository"):
        registered_target("metacot_edit")
