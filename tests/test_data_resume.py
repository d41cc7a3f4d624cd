"""The packed stream on 2 ranks x 2 loader workers: resuming from a saved data state equals running on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from data.dataset_info import DATASET_INFO, DatasetInfo, register_dataset
from data.demo_records import BYTE_SPECIAL_TOKENS, ByteTokenizer, demo_records
from data.mix_config import MixConfig, parse_mix
from data.packed_dataset import DataStateTracker, PackedMixDataset, make_loader
from data.parquet_writer import write_parquet_shards

RANKS, WORKERS, TOTAL, CUT = 2, 2, 8, 3


def build_mix(root: Path, n_gen: int, n_und: int) -> MixConfig:
    write_parquet_shards(demo_records(n_gen, kinds=("edit", "t2i"), seed=1), str(root / "gen"), row_group_size=4)
    write_parquet_shards(demo_records(n_und, kinds=("understanding", "text"), seed=2), str(root / "und"),
                         row_group_size=5)
    register_dataset(DatasetInfo("resume_gen", "parquet", (str(root / "gen"),)), overwrite=True)
    register_dataset(DatasetInfo("resume_und", "parquet", (str(root / "und"),)), overwrite=True)
    transforms = {"vae_transform": [64, 32, 16], "vit_transform": [56, 28, 14]}
    try:
        return parse_mix({
            "seed": 5,
            "tokens": {"expected_num_tokens": 400, "max_num_tokens": 500, "max_num_tokens_per_sample": 500},
            "packing": {"vit_max_num_patch_per_side": 16, "max_latent_size": 16},
            "groups": {"gen": {"datasets": ["resume_gen"], "weight": 2.0, **transforms},
                       "und": {"datasets": ["resume_und"], "weight": 1.0, **transforms}},
        })
    finally:  # the parsed mix carries the entries; the global registry is left as it was
        DATASET_INFO.pop("resume_gen")
        DATASET_INFO.pop("resume_und")


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> MixConfig:
    """Small datasets, so the 8 batches cross several epochs."""
    return build_mix(tmp_path_factory.mktemp("resume"), 40, 24)


def take(mix: MixConfig, rank: int, n: int, state: dict | None = None) -> tuple[list[dict], DataStateTracker]:
    dataset = PackedMixDataset(mix, ByteTokenizer(), BYTE_SPECIAL_TOKENS, rank, RANKS, WORKERS, state)
    tracker = DataStateTracker(state)
    batches = []
    for batch in make_loader(dataset):
        tracker.update(batch)
        batches.append(batch)
        if len(batches) == n:
            break
    return batches, tracker


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("rank", range(RANKS))
def test_resume_equals_uninterrupted(mix: MixConfig, rank: int) -> None:
    full, _ = take(mix, rank, TOTAL)
    head, tracker = take(mix, rank, CUT)
    saved = tracker.state_dict()
    tail, _ = take(mix, rank, TOTAL - CUT, saved)
    for a, b in zip(full, head + tail):
        assert_same(a, b)
    # the stream really moved on: several epochs, dropout and both groups exercised
    ids = [i for b in full for i in b["sample_ids"]]
    assert len(ids) > len(set(ids)) and {"edit", "t2i", "understanding", "text"} <= {i.split("-")[0] for i in ids}


def test_ranks_and_workers_read_disjoint_rows(tmp_path: Path) -> None:
    """Within an epoch no row is read by two data workers of the run (4 here: 2 ranks x 2 loader workers)."""
    mix = build_mix(tmp_path, 96, 96)
    per_worker: dict[tuple[int, int], set[str]] = {}
    for rank in range(RANKS):
        batches, tracker = take(mix, rank, WORKERS)
        for i, batch in enumerate(batches):
            per_worker.setdefault((rank, i % WORKERS), set()).update(batch["sample_ids"])
        assert all(s["epoch"] == 0 for w in tracker.workers.values() for s in w["streams"])
    sets = list(per_worker.values())
    assert len(sets) == RANKS * WORKERS and all(sets)
    for i, a in enumerate(sets):
        for b in sets[i + 1:]:
            assert not a & b


def test_resume_with_other_worker_count_or_world_size_is_refused(mix: MixConfig) -> None:
    _, tracker = take(mix, 0, 1)
    with pytest.raises(ValueError, match="resume with num_workers=2"):
        PackedMixDataset(mix, ByteTokenizer(), BYTE_SPECIAL_TOKENS, 0, RANKS, 4, tracker.state_dict())
    with pytest.raises(ValueError, match="world size 2, not 4"):
        PackedMixDataset(mix, ByteTokenizer(), BYTE_SPECIAL_TOKENS, 0, 4, WORKERS, tracker.state_dict())
