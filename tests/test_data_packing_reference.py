"""The packer reproduces the original BAGEL packed batch of the ``train_forward`` reference case exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from data.packing import PackingConfig, SpecialTokens, pack_samples
from data.render import SampleRenderer
from data.segments import TextSegment, VaeImageSegment, VitImageSegment
from data.transforms import ImageTransform
from tests.fixture_paths import TINY as TINY_PATH

TINY = TINY_PATH
CASE = TINY / "cases" / "train_forward"
pytestmark = pytest.mark.skipif(not CASE.is_dir(), reason="BAGEL tiny reference fixtures not present")


def png(name: str) -> bytes:
    return (CASE / name).read_bytes()


def _rows() -> list[dict]:
    texts = json.loads((CASE / "case.json").read_text())["texts"]
    conversation = [{"role": "user", "text": texts["vlm_question"]}, {"role": "assistant", "text": texts["vlm_answer"]}]
    return [
        {"id": "vlm", "kind": "understanding", "source_image": png("vlm_image.png"),
         "conversation": json.dumps(conversation)},
        {"id": "t2i", "kind": "t2i", "instruction": texts["t2i_caption"], "target_image": png("t2i_image.png")},
        {"id": "edit", "kind": "edit", "instruction": texts["edit_instruction"], "source_image": png("edit_source.png"),
         "target_image": png("edit_target.png")},
    ]


def _plan_as_original(segments: list) -> list[dict]:
    out = []
    for seg in segments:
        kind = {TextSegment: "text", VitImageSegment: "vit_image", VaeImageSegment: "vae_image"}[type(seg)]
        loss = seg.loss if isinstance(seg, TextSegment) else getattr(seg, "noised", False)
        out.append({"type": kind, "enable_cfg": int(seg.droppable), "loss": int(loss)})
    return out


@pytest.fixture(scope="module")
def packed() -> tuple[dict, list]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(TINY))
    special = SpecialTokens.from_dict(json.loads((TINY / "special_token_ids.json").read_text()))
    bagel = json.loads((TINY / "bagel_config.json").read_text())
    config = PackingConfig(vit_patch_size=14, vit_max_num_patch_per_side=bagel["vit_max_num_patch_per_side"],
                           vae_downsample=8 * bagel["latent_patch_size"], max_latent_size=bagel["max_latent_size"])
    renderer = SampleRenderer(tokenizer, ImageTransform(48, 32, 16), ImageTransform(56, 28, 14))
    samples = [renderer.render(row, "fixture") for row in _rows()]
    return pack_samples(samples, special, config, np.random.default_rng(0)), samples


def test_sequence_plans_match_reference(packed: tuple[dict, list]) -> None:
    plans = json.loads((CASE / "case.json").read_text())["sequence_plans"]
    for sample, plan in zip(packed[1], plans):
        assert _plan_as_original(sample.segments) == [{k: p[k] for k in ("type", "enable_cfg", "loss")} for p in plan]


def test_packed_layout_matches_reference(packed: tuple[dict, list]) -> None:
    batch, _ = packed
    case = json.loads((CASE / "case.json").read_text())
    ref = load_file(str(CASE / "inputs.safetensors"))
    assert batch["sequence_length"] == case["sequence_length"]
    assert batch["sample_lens"] == case["sample_lens"]
    assert batch["split_lens"] == [n for lens in case["split_lens_per_sample"] for n in lens]
    assert batch["attn_modes"] == [m for modes in case["attn_modes_per_sample"] for m in modes]
    assert [list(s) for s in batch["patchified_vae_latent_shapes"]] == case["patchified_vae_latent_shapes"]
    for key in ("packed_text_ids", "packed_text_indexes", "packed_position_ids", "packed_vit_position_ids",
                "packed_vit_token_indexes", "vit_token_seqlens", "packed_latent_position_ids",
                "packed_vae_token_indexes", "mse_loss_indexes", "packed_label_ids", "ce_loss_indexes"):
        assert batch[key].dtype == ref[key].dtype, key
        assert torch.equal(batch[key], ref[key]), key
    assert torch.allclose(batch["ce_loss_weights"], ref["ce_loss_weights"], atol=1e-6)
    assert torch.allclose(batch["padded_images"], ref["padded_images"], atol=1e-4, rtol=0)
    assert torch.allclose(batch["packed_vit_tokens"], ref["packed_vit_tokens"], atol=1e-4, rtol=0)
    # Timesteps: same pattern (-inf on clean tokens, one draw shared by the tokens of a noised image).
    clean = torch.isinf(ref["packed_timesteps"])
    assert torch.equal(torch.isinf(batch["packed_timesteps"]), clean)
    noised = batch["packed_timesteps"][~clean]
    assert torch.isfinite(noised).all() and len(set(noised.tolist())) == 2


def test_sample_bookkeeping(packed: tuple[dict, list]) -> None:
    batch, _ = packed
    assert batch["dataset_name"] == ["fixture"] * 3 and batch["sample_ids"] == ["vlm", "t2i", "edit"]
    owner = batch["packed_sample_ids"]
    assert owner[batch["ce_loss_indexes"]].tolist() == [0] * 6
    assert owner[batch["mse_loss_indexes"]].tolist() == [1] * 6 + [2] * 4


def test_reference_losses_from_our_batch(packed: tuple[dict, list]) -> None:
    """Our batch, with the case's recorded random draws (timesteps, VAE sample, noise), gives the reference losses."""
    from modeling.bagel.loader import load_bagel

    batch = dict(packed[0])
    ref = load_file(str(CASE / "inputs.safetensors"))
    expected = load_file(str(CASE / "expected.safetensors"))
    batch.update(packed_timesteps=ref["packed_timesteps"], padded_latent=ref["padded_latent"], noise=ref["noise"])
    model = load_bagel(TINY).model.train()
    with torch.no_grad():
        losses = model.forward_train(batch)
    assert torch.allclose(losses.ce, expected["ce"], atol=1e-4, rtol=0)
    assert torch.allclose(losses.mse, expected["mse"], atol=1e-4, rtol=0)
