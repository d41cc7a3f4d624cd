"""Image transforms of BAGEL: the stride-aligned resize, pixel normalisation, NaViT patchify and position ids.

The resize rule is the original one (``MaxLongEdgeMinShortEdgeResize``): scale the long edge down to ``max_size``
(never up), then up so the short edge reaches ``min_size``, round each side to a multiple of ``stride``; if a pixel
budget is given and exceeded, or rounding pushed the long edge past ``max_size``, rescale once more. Resampling is
PIL bicubic (antialiased by construction). The official VAE side is (1024, 512, 16), the ViT side (980, 224, 14);
the original default pixel budget, ``BAGEL_DEFAULT_MAX_PIXELS``, is never reached with those sizes.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from data.image_io import to_rgb

BAGEL_DEFAULT_MAX_PIXELS = 14 * 14 * 9 * 1024


def pil_to_pixels(img: Image.Image) -> torch.Tensor:
    """uint8 RGB image -> float tensor [3, H, W] in [-1, 1]: (x / 255 - 0.5) / 0.5, computed as x / 127.5 - 1."""
    array = np.asarray(to_rgb(img))
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).float()  # one uint8 copy (PIL's buffer is read-only)
    return pixels.div_(127.5).sub_(1.0)


class ImageTransform:
    def __init__(self, max_size: int, min_size: int, stride: int, max_pixels: int | None = None) -> None:
        if not 0 < min_size <= max_size or stride <= 0:
            raise ValueError(f"bad image transform ({max_size}, {min_size}, {stride}): need 0 < min <= max, stride > 0")
        self.max_size = max_size
        self.min_size = min_size
        self.stride = stride
        self.max_pixels = max_pixels

    def _snap(self, value: float) -> int:
        # round() is Python's banker's rounding, as in the original; a side is never below one stride.
        return max(self.stride, int(round(value / self.stride) * self.stride))

    def _scaled(self, width: int, height: int, scale: float) -> tuple[int, int]:
        return self._snap(round(width * scale)), self._snap(round(height * scale))

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after the resize of an image of ``width`` x ``height``."""
        scale = min(self.max_size / max(width, height), 1.0)
        scale = max(scale, self.min_size / min(width, height))
        new_w, new_h = self._scaled(width, height, scale)
        if self.max_pixels is not None and new_w * new_h > self.max_pixels:
            new_w, new_h = self._scaled(new_w, new_h, self.max_pixels / (new_w * new_h))
        if max(new_w, new_h) > self.max_size:
            new_w, new_h = self._scaled(new_w, new_h, self.max_size / max(new_w, new_h))
        return new_w, new_h

    def resize(self, img: Image.Image) -> Image.Image:
        img = to_rgb(img)
        return img.resize(self.target_size(*img.size), Image.Resampling.BICUBIC)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return pil_to_pixels(self.resize(img))


def patchify(pixels: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[C, H, W] -> [h*w, p*p*C]: patches row-major, features ordered (row-in-patch, col-in-patch, channel)."""
    channels, height, width = pixels.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"image {height}x{width} is not divisible by patch size {patch_size}; "
                         "resize with that stride first")
    h, w = height // patch_size, width // patch_size
    grid = pixels.reshape(channels, h, patch_size, w, patch_size)
    return grid.permute(1, 3, 2, 4, 0).reshape(h * w, patch_size * patch_size * channels)


def flattened_position_ids(h: int, w: int, max_per_side: int) -> torch.Tensor:
    """Position id ``row * max_per_side + col`` of each cell of an h x w grid, row-major (size-independent layout)."""
    if h > max_per_side or w > max_per_side:
        raise ValueError(f"grid {h}x{w} exceeds {max_per_side} per side; lower the image max_size")
    rows = torch.arange(h).unsqueeze(1)
    cols = torch.arange(w).unsqueeze(0)
    return (rows * max_per_side + cols).reshape(-1)
