"""Parity of the image transforms with the BAGEL tiny reference fixtures (original code, CPU float32)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from data.image_io import to_rgb
from data.transforms import ImageTransform, flattened_position_ids, patchify, pil_to_pixels
from tests.fixture_paths import TINY

CASES = TINY / "cases"
pytestmark = pytest.mark.skipif(not CASES.is_dir(), reason="BAGEL tiny reference fixtures not present")


def _case_transforms(case: str) -> tuple[ImageTransform, ImageTransform]:
    spec = json.loads((CASES / case / "case.json").read_text())["transforms"]
    return ImageTransform(*spec["vae_transform"]), ImageTransform(*spec["vit_transform"])


@pytest.mark.parametrize("case", ["edit", "understand"])
def test_inferencer_transforms_match_reference(case: str) -> None:
    expected = load_file(str(CASES / case / "expected.safetensors"))
    vae_transform, vit_transform = _case_transforms(case)
    image = Image.open(CASES / case / "input.png")
    resized = vae_transform.resize(image)
    after_resize = torch.from_numpy(np.asarray(resized).copy())
    assert after_resize.shape == expected["input_after_vae_resize"].shape
    assert (after_resize.int() - expected["input_after_vae_resize"].int()).abs().max() <= 1
    if "vae_pixels" in expected:
        assert torch.allclose(pil_to_pixels(resized), expected["vae_pixels"], atol=1e-4, rtol=0)
    vit_pixels = vit_transform(resized)
    assert vit_pixels.shape == expected["vit_pixels"].shape
    assert torch.allclose(vit_pixels, expected["vit_pixels"], atol=1e-4, rtol=0)


def test_patchify_and_position_ids_reproduce_vit_case() -> None:
    spec = json.loads((CASES / "vit" / "case.json").read_text())
    inputs = load_file(str(CASES / "vit" / "inputs.safetensors"))
    patch, per_side = spec["patch_size"], spec["max_num_patches_per_side"]
    tokens, positions, lens = [], [], []
    for name in spec["input_pngs"]:
        pixels = pil_to_pixels(Image.open(CASES / "vit" / name))
        tokens.append(patchify(pixels, patch))
        positions.append(flattened_position_ids(pixels.shape[1] // patch, pixels.shape[2] // patch, per_side))
        lens.append(tokens[-1].shape[0])
    assert torch.allclose(torch.cat(tokens), inputs["packed_pixel_values"], atol=1e-6, rtol=0)
    assert torch.equal(torch.cat(positions), inputs["packed_position_ids"])
    assert lens == inputs["vit_token_seqlens"].tolist()


@pytest.mark.parametrize(
    ("size", "transform", "max_pixels", "expected"),
    [
        ((2000, 1000), (1024, 512, 16), None, (1024, 512)),  # long edge capped
        ((300, 200), (1024, 512, 16), None, (768, 512)),  # short edge lifted to min
        ((4000, 500), (1024, 512, 16), None, (1024, 128)),  # extreme aspect: max wins after the min lift
        ((1000, 1000), (1024, 512, 16), None, (992, 992)),  # 62.5 strides rounds half to even
        ((1000, 1000), (980, 224, 14), None, (980, 980)),
        # over budget: 992*992 > 700k, the original rescales linearly by the area ratio 0.711 -> 705.6 -> 704
        ((1000, 1000), (1024, 512, 16), 700_000, (704, 704)),
    ],
)
def test_resize_rule(size: tuple[int, int], transform: tuple[int, int, int], max_pixels: int | None,
                     expected: tuple[int, int]) -> None:
    assert ImageTransform(*transform, max_pixels=max_pixels).target_size(*size) == expected


def test_to_rgb_handles_alpha_palette_and_gray() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("L", (4, 4), 7)).getpixel((0, 0)) == (7, 7, 7)
    palette = Image.new("RGB", (4, 4), (0, 0, 255)).convert("P")
    assert to_rgb(palette).getpixel((0, 0)) == (0, 0, 255)
    pixels = ImageTransform(32, 16, 16)(Image.new("L", (40, 20), 255))
    assert pixels.shape == (3, 16, 32) and torch.allclose(pixels, torch.ones_like(pixels))
