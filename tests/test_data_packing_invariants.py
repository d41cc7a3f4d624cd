"""Packing invariants on random sample plans, with condition dropout on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.packing import BatchPacker, ConditionDropout, PackingConfig, SpecialTokens
from data.segments import PackableSample, TextSegment, VaeImageSegment, VitImageSegment

SPECIAL = SpecialTokens(1, 2, 3, 4)
CONFIG = PackingConfig(vit_patch_size=14, vit_max_num_patch_per_side=16, vae_downsample=16, max_latent_size=16)


def random_sample(rng: np.random.Generator, i: int) -> PackableSample:
    segments = []
    for _ in range(int(rng.integers(1, 6))):
        kind = rng.integers(0, 3)
        if kind == 0:
            ids = rng.integers(10, 100, size=int(rng.integers(0, 8))).tolist()
            segments.append(TextSegment(ids, loss=bool(rng.integers(0, 2)), droppable=bool(rng.integers(0, 2))))
        elif kind == 1:
            h, w = (int(v) for v in rng.integers(1, 4, size=2))
            segments.append(VitImageSegment(torch.rand(3, 14 * h, 14 * w), droppable=bool(rng.integers(0, 2))))
        else:
            h, w = (int(v) for v in rng.integers(1, 4, size=2))
            noised = bool(rng.integers(0, 2))
            segments.append(VaeImageSegment(torch.rand(3, 16 * h, 16 * w), noised=noised,
                                            droppable=not noised and bool(rng.integers(0, 2))))
    return PackableSample(segments, dataset_name=f"d{i % 3}", sample_id=str(i))


@pytest.mark.parametrize("seed", range(8))
def test_indexes_cover_sequence_once_and_lengths_agree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    packer = BatchPacker(SPECIAL, CONFIG, np.random.default_rng(seed))
    samples = [random_sample(rng, i) for i in range(6)]
    for s in samples:
        packer.add(s, ConditionDropout(0.5, 0.5, 0.5))
    b = packer.build()
    n = b["sequence_length"]
    covered = torch.cat([b["packed_text_indexes"], b["packed_vit_token_indexes"], b["packed_vae_token_indexes"]])
    assert torch.equal(covered.sort().values, torch.arange(n))  # every slot exactly once
    assert sum(b["sample_lens"]) == n == sum(b["split_lens"]) == b["packed_position_ids"].numel()
    assert len(b["split_lens"]) == len(b["attn_modes"]) and set(b["attn_modes"]) <= {"causal", "full", "noise"}
    assert b["packed_text_ids"].numel() == b["packed_text_indexes"].numel()
    assert b["packed_vit_tokens"].shape == (b["packed_vit_token_indexes"].numel(), 588)
    n_vit = b["packed_vit_token_indexes"].numel()
    assert int(b["vit_token_seqlens"].sum()) == n_vit == b["packed_vit_position_ids"].numel()
    assert sum(h * w for h, w in b["patchified_vae_latent_shapes"]) == b["packed_vae_token_indexes"].numel()
    assert b["padded_images"].shape[0] == len(b["patchified_vae_latent_shapes"])
    # CE only on text slots, MSE exactly on the noised VAE slots (finite timesteps), -inf on clean ones.
    assert set(b["ce_loss_indexes"].tolist()) <= set(b["packed_text_indexes"].tolist())
    assert b["packed_label_ids"].numel() == b["ce_loss_indexes"].numel() == b["ce_loss_weights"].numel()
    finite = torch.isfinite(b["packed_timesteps"])
    assert torch.equal(b["packed_vae_token_indexes"][finite], b["mse_loss_indexes"])
    # Per split: 'causal' splits are text, and split boundaries never cross samples.
    owner = b["packed_sample_ids"]
    start = 0
    for length in b["split_lens"]:
        assert owner[start] == owner[start + length - 1]
        start += length
    assert b["dataset_name"] == [s.dataset_name for s in samples]


def test_positions_follow_block_rules() -> None:
    sample = PackableSample([
        VaeImageSegment(torch.zeros(3, 32, 32)),  # clean: one position, advances
        VitImageSegment(torch.zeros(3, 28, 28)),  # one position, advances
        TextSegment([50, 51]),  # bos + 2 + eos: 4 positions
        VaeImageSegment(torch.zeros(3, 32, 16), noised=True),  # one position, no advance
        TextSegment([52]),
    ])
    b = BatchPacker(SPECIAL, CONFIG, np.random.default_rng(0))
    b.add(sample)
    out = b.build()
    expected = [0] * 6 + [1] * 6 + [2, 3, 4, 5] + [6] * 4 + [6, 7, 8]
    assert out["packed_position_ids"].tolist() == expected
    assert out["attn_modes"] == ["full", "full", "causal", "noise", "causal"]
    assert out["packed_latent_position_ids"].tolist() == [0, 1, 16, 17, 0, 16]


def test_dropout_removes_conditions_but_keeps_position_slots() -> None:
    sample = PackableSample([
        VaeImageSegment(torch.zeros(3, 16, 16), droppable=True),
        VitImageSegment(torch.zeros(3, 14, 14), droppable=True),
        TextSegment([9, 9], droppable=True),
        TextSegment([7], loss=True),
        VaeImageSegment(torch.zeros(3, 16, 16), noised=True),
    ])
    packer = BatchPacker(SPECIAL, CONFIG, np.random.default_rng(0))
    packer.add(sample, ConditionDropout(1.0, 1.0, 1.0))
    out = packer.build()
    assert out["attn_modes"] == ["causal", "noise"]
    # both images dropped still advance the position by one each; the dropped text does not
    assert out["packed_position_ids"].tolist() == [2, 3, 4] + [5, 5, 5]
    assert out["packed_label_ids"].tolist() == [7, 2]


def test_dropout_rates_are_the_configured_ones() -> None:
    packer = BatchPacker(SPECIAL, CONFIG, np.random.default_rng(1))
    sample = PackableSample([VitImageSegment(torch.zeros(3, 14, 14), droppable=True), TextSegment([5], droppable=True),
                             TextSegment([6], loss=True)])
    kept_vit = kept_text = 0
    for _ in range(2000):
        packer.add(sample, ConditionDropout(text=0.1, vit=0.3, vae=0.3))
        out = packer.build()
        kept_vit += out["packed_vit_token_indexes"].numel()
        kept_text += int((out["packed_text_ids"] == 5).sum())
    assert abs(kept_vit / 2000 - 0.7) < 0.04 and abs(kept_text / 2000 - 0.9) < 0.03
