"""A fixed synthetic edit workload (random pixels and token ids), packed by the real packer.

This is the SFT issue's benchmark workload: per sample, an instruction and a CoT text (CE on the CoT), the source
image as clean VAE latents and as ViT patches, and the target as noised VAE latents with MSE. VAE latents are drawn
directly (``padded_latent``), so no autoencoder runs: the benchmark times the model, and the VAE separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from data.packing import BatchPacker, PackingConfig, SpecialTokens
from data.segments import PackableSample, TextSegment, VaeImageSegment, VitImageSegment


@dataclass
class SyntheticEditConfig:
    samples_per_batch: int = 8
    text_tokens: int = 512         # instruction + CoT, each with its bos/eos; CE on the CoT half
    vit_side: int = 504            # 36 x 36 ViT patches of 14 px
    vae_side: int = 512            # 32 x 32 latent tokens of 16 px
    latent_channels: int = 16
    vocab_limit: int = 151643      # ids drawn below this (ordinary text tokens of Qwen2.5)
    seed: int = 0


def synthetic_edit_batch(cfg: SyntheticEditConfig, special: SpecialTokens, index: int,
                         vit_max_num_patch_per_side: int = 70, max_latent_size: int = 64) -> dict[str, Any]:
    """Packed batch number ``index`` (deterministic in seed and index)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + index)
    half = cfg.text_tokens // 2 - 2  # each text segment adds bos and eos
    packer = BatchPacker(special, PackingConfig(vit_max_num_patch_per_side=vit_max_num_patch_per_side,
                                                max_latent_size=max_latent_size), np.random.default_rng(index))
    vae_pixels = torch.zeros(3, cfg.vae_side, cfg.vae_side)  # only shapes matter: latents are drawn below
    for i in range(cfg.samples_per_batch):
        ids = torch.randint(0, cfg.vocab_limit, (2, half), generator=gen).tolist()
        vit = torch.rand(3, cfg.vit_side, cfg.vit_side, generator=gen) * 2 - 1
        packer.add(PackableSample([VaeImageSegment(vae_pixels), VitImageSegment(vit), TextSegment(ids[0]),
                                   TextSegment(ids[1], loss=True), VaeImageSegment(vae_pixels, noised=True)],
                                  dataset_name="synthetic_edit", sample_id=f"{index}-{i}"))
    batch = packer.build()
    images = batch.pop("padded_images")
    side = cfg.vae_side // 8
    batch["padded_latent"] = torch.randn(images.shape[0], cfg.latent_channels, side, side, generator=gen)
    return batch


class SyntheticEditStream:
    """Endless rank-sharded stream of synthetic edit batches; the state is the number of batches consumed."""

    def __init__(self, cfg: SyntheticEditConfig, special: SpecialTokens, rank: int, world_size: int,
                 vit_max_num_patch_per_side: int = 70, max_latent_size: int = 64) -> None:
        self.cfg, self.special, self.rank, self.world_size = cfg, special, rank, world_size
        self.sizes = (vit_max_num_patch_per_side, max_latent_size)
        self.position = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            index = self.position * self.world_size + self.rank
            self.position += 1
            yield synthetic_edit_batch(self.cfg, self.special, index, *self.sizes)

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = int(state["position"])
