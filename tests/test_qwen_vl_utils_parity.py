"""The local Qwen2.5-VL judge prepares images with qwen_vl_utils where it imports (it needs torchvision: the GPU
machine) and with the documented equivalent elsewhere; both must give the same pixels (skipped without the package)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.benchmark.judges.qwen_inputs import (MAX_PIXELS, MIN_PIXELS, _process_vision_info, prepare_images,
                                                    resize_like_qwen_vl_utils, smart_resize)

vision_process = pytest.importorskip("qwen_vl_utils.vision_process", reason="needs qwen_vl_utils and torchvision")

# (width, height, min_pixels, max_pixels): kept, rounded, shrunk to the budget, grown to the minimum, extreme aspects
CASES = [
    (64, 48, MIN_PIXELS, MAX_PIXELS),
    (517, 333, MIN_PIXELS, MAX_PIXELS),
    (1024, 1024, MIN_PIXELS, MAX_PIXELS),
    (1920, 1080, MIN_PIXELS, 1024 * 28 * 28),
    (2000, 1000, MIN_PIXELS, 1_000_000),
    (10, 10, 56 * 56, MAX_PIXELS),
    (3000, 40, MIN_PIXELS, MAX_PIXELS),
    (45, 900, 256 * 28 * 28, 512 * 28 * 28),
]


def noise(width: int, height: int, mode: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgba = Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA")
    return rgba if mode == "RGBA" else rgba.convert(mode)


def test_the_package_is_what_prepare_images_uses():
    assert _process_vision_info() is not None


def test_smart_resize_equals_the_package_on_a_grid_of_sizes():
    sizes = [(h, w) for h in (1, 13, 27, 28, 29, 100, 333, 1000, 4095) for w in (14, 28, 55, 512, 1999, 4000)
             if max(h, w) / min(h, w) <= 200]
    for min_pixels, max_pixels in ((MIN_PIXELS, MAX_PIXELS), (256 * 28 * 28, 1280 * 28 * 28)):
        ours = [smart_resize(h, w, min_pixels=min_pixels, max_pixels=max_pixels) for h, w in sizes]
        theirs = [vision_process.smart_resize(h, w, factor=28, min_pixels=min_pixels, max_pixels=max_pixels)
                  for h, w in sizes]
        assert ours == theirs


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_both_paths_give_the_same_pixels(mode):
    for seed, (width, height, min_pixels, max_pixels) in enumerate(CASES):
        images = [noise(width, height, mode, seed)]
        package = prepare_images(images, min_pixels, max_pixels)
        equivalent = resize_like_qwen_vl_utils(images, min_pixels, max_pixels)
        assert package[0].size == equivalent[0].size, (width, height)
        assert package[0].mode == equivalent[0].mode == "RGB"
        assert np.array_equal(np.asarray(package[0]), np.asarray(equivalent[0])), (mode, width, height)
