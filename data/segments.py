"""A sample as the packer sees it: an ordered list of text / ViT-image / VAE-image segments (the 'sequence plan').

``droppable`` marks a condition that classifier-free-guidance dropout may remove (the original's ``enable_cfg``);
``loss`` on text means CE on its tokens (and the closing eos); a ``noised`` VAE image is a generation target
(flow-matching MSE), a clean one is a condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class TextSegment:
    ids: list[int]
    loss: bool = False
    droppable: bool = False


@dataclass(frozen=True)
class VitImageSegment:
    pixels: torch.Tensor  # [3, H, W] in [-1, 1], H and W multiples of the ViT patch
    droppable: bool = False


@dataclass(frozen=True)
class VaeImageSegment:
    pixels: torch.Tensor  # [3, H, W] in [-1, 1], H and W multiples of the VAE downsample x latent patch
    noised: bool = False
    droppable: bool = False


Segment = TextSegment | VitImageSegment | VaeImageSegment


@dataclass
class PackableSample:
    segments: list[Segment]
    dataset_name: str = ""
    sample_id: str = ""
    extras: dict = field(default_factory=dict)  # anything a caller wants to carry (e.g. the raw texts)

    def num_tokens(self, vit_patch_size: int, vae_downsample: int) -> int:
        """Sequence length of the sample with no condition dropped (each segment adds its 2 delimiters)."""
        total = 0
        for seg in self.segments:
            if isinstance(seg, TextSegment):
                total += len(seg.ids) + 2
            else:
                patch = vit_patch_size if isinstance(seg, VitImageSegment) else vae_downsample
                total += (seg.pixels.shape[1] // patch) * (seg.pixels.shape[2] // patch) + 2
        return total
