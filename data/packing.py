"""Pack samples into one flat multimodal sequence: the batch dict the model's ``forward_train`` consumes.

Layout rules (those of the original packed dataset, checked against the ``train_forward`` reference case):

* text: ``[bos] + ids + [eos]``, positions advance one per token, split mode 'causal'; with loss, CE at the bos and
  text positions predicting ``ids + [eos]``, weighted 1/sqrt(len) per segment ('square' length weighting);
* ViT image: ``[start_of_image] + patches + [end_of_image]``, one position for the block, then +1, mode 'full';
* VAE image: the same block layout; a clean condition gets timestep -inf, mode 'full' and advances the position;
  a noised target gets one raw N(0, 1) draw (logit-normal after the model's sigmoid), MSE on its tokens, mode
  'noise', and does *not* advance the position;
* condition dropout (for CFG) removes a droppable segment; a dropped image still advances the position by one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from data.segments import PackableSample, TextSegment, VaeImageSegment, VitImageSegment
from data.transforms import flattened_position_ids, patchify


@dataclass(frozen=True)
class SpecialTokens:
    bos_token_id: int
    eos_token_id: int
    start_of_image: int
    end_of_image: int

    @classmethod
    def from_dict(cls, ids: dict) -> "SpecialTokens":
        """Accepts the flat id dict, or the fixture's ``special_token_ids.json`` layout (under 'new_token_ids')."""
        ids = ids.get("new_token_ids", ids)
        missing = [k for k in ("bos_token_id", "eos_token_id", "start_of_image", "end_of_image") if k not in ids]
        if missing:
            raise ValueError(f"special token ids lack {missing}; pass the dict BAGEL derives from the tokenizer")
        return cls(int(ids["bos_token_id"]), int(ids["eos_token_id"]), int(ids["start_of_image"]),
                   int(ids["end_of_image"]))


@dataclass(frozen=True)
class PackingConfig:
    vit_patch_size: int = 14
    vit_max_num_patch_per_side: int = 70
    vae_downsample: int = 16  # AE downsample 8 x latent patch 2: pixels per latent token side
    max_latent_size: int = 64  # the released 7B's latent position table side
    ce_length_weighting: bool = True  # the original's len2weight 'square': 1/sqrt(segment length)


@dataclass(frozen=True)
class ConditionDropout:
    """Probabilities of dropping a droppable text / ViT / clean-VAE condition (defaults: the official recipe)."""

    text: float = 0.1
    vit: float = 0.3
    vae: float = 0.3

    def __post_init__(self) -> None:
        for name in ("text", "vit", "vae"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"condition dropout {name}={getattr(self, name)} must be in [0, 1]")


NO_DROPOUT = ConditionDropout(0.0, 0.0, 0.0)


class BatchPacker:
    """Accumulates samples (``add``) and emits the packed batch dict (``build``), then starts empty again."""

    def __init__(self, special: SpecialTokens, config: PackingConfig, rng: np.random.Generator) -> None:
        self.special = special
        self.config = config
        self.rng = rng
        self._reset()

    def _reset(self) -> None:
        self.length = 0
        self.sample_lens: list[int] = []
        self.split_lens: list[int] = []
        self.attn_modes: list[str] = []
        self.dataset_names: list[str] = []
        self.sample_ids: list[str] = []
        self.position_ids: list[int] = []
        self.text_ids: list[int] = []
        self.text_indexes: list[int] = []
        self.label_ids: list[int] = []
        self.ce_indexes: list[int] = []
        self.ce_weights: list[float] = []
        self.vit_tokens: list[torch.Tensor] = []
        self.vit_position_ids: list[torch.Tensor] = []
        self.vit_indexes: list[int] = []
        self.vit_seqlens: list[int] = []
        self.vae_images: list[torch.Tensor] = []
        self.vae_shapes: list[tuple[int, int]] = []
        self.latent_position_ids: list[torch.Tensor] = []
        self.vae_indexes: list[int] = []
        self.timesteps: list[float] = []
        self.mse_indexes: list[int] = []

    @property
    def num_samples(self) -> int:
        return len(self.sample_lens)

    def _dropped(self, droppable: bool, probability: float) -> bool:
        # Draw only for droppable segments, so the draw sequence depends on the data alone.
        return droppable and self.rng.random() < probability

    def _image_block(self, n_tokens: int, position: int) -> range:
        """Writes start/end markers around ``n_tokens`` slots at one RoPE position; returns the token slots."""
        start = self.length
        self.text_ids.append(self.special.start_of_image)
        self.text_indexes.append(start)
        tokens = range(start + 1, start + 1 + n_tokens)
        self.text_ids.append(self.special.end_of_image)
        self.text_indexes.append(start + 1 + n_tokens)
        self.position_ids.extend([position] * (n_tokens + 2))
        self.length += n_tokens + 2
        return tokens

    def _add_text(self, seg: TextSegment, position: int) -> int:
        start = self.length
        shifted = [self.special.bos_token_id] + list(seg.ids)
        self.text_ids.extend(shifted + [self.special.eos_token_id])
        self.text_indexes.extend(range(start, start + len(shifted) + 1))
        if seg.loss:
            weight = 1.0 / math.sqrt(len(shifted)) if self.config.ce_length_weighting else 1.0
            self.ce_indexes.extend(range(start, start + len(shifted)))
            self.ce_weights.extend([weight] * len(shifted))
            self.label_ids.extend(list(seg.ids) + [self.special.eos_token_id])
        n = len(shifted) + 1
        self.position_ids.extend(range(position, position + n))
        self.length += n
        self.split_lens.append(n)
        self.attn_modes.append("causal")
        return position + n

    def _add_vit(self, seg: VitImageSegment, position: int) -> int:
        patch = self.config.vit_patch_size
        tokens = patchify(seg.pixels, patch)
        h, w = seg.pixels.shape[1] // patch, seg.pixels.shape[2] // patch
        slots = self._image_block(tokens.shape[0], position)
        self.vit_tokens.append(tokens)
        self.vit_position_ids.append(flattened_position_ids(h, w, self.config.vit_max_num_patch_per_side))
        self.vit_indexes.extend(slots)
        self.vit_seqlens.append(tokens.shape[0])
        self.split_lens.append(len(slots) + 2)
        self.attn_modes.append("full")
        return position + 1

    def _add_vae(self, seg: VaeImageSegment, position: int) -> int:
        down = self.config.vae_downsample
        height, width = seg.pixels.shape[1:]
        if height % down or width % down:
            raise ValueError(f"VAE image {height}x{width} is not a multiple of {down}; "
                             f"use a VAE transform with stride {down}")
        h, w = height // down, width // down
        slots = self._image_block(h * w, position)
        self.vae_images.append(seg.pixels)
        self.vae_shapes.append((h, w))
        self.latent_position_ids.append(flattened_position_ids(h, w, self.config.max_latent_size))
        self.vae_indexes.extend(slots)
        if seg.noised:
            self.timesteps.extend([float(self.rng.standard_normal())] * len(slots))
            self.mse_indexes.extend(slots)
        else:
            self.timesteps.extend([float("-inf")] * len(slots))
        self.split_lens.append(len(slots) + 2)
        self.attn_modes.append("noise" if seg.noised else "full")
        return position if seg.noised else position + 1

    def add(self, sample: PackableSample, dropout: ConditionDropout = NO_DROPOUT) -> int:
        """Appends one sample; returns its packed length (after condition dropout)."""
        start, position = self.length, 0
        for seg in sample.segments:
            if isinstance(seg, TextSegment):
                if not self._dropped(seg.droppable, dropout.text):
                    position = self._add_text(seg, position)
            elif isinstance(seg, VitImageSegment):
                dropped = self._dropped(seg.droppable, dropout.vit)
                position = position + 1 if dropped else self._add_vit(seg, position)
            elif isinstance(seg, VaeImageSegment):
                dropped = self._dropped(seg.droppable, dropout.vae)
                position = position + 1 if dropped else self._add_vae(seg, position)
            else:
                raise TypeError(f"unknown segment type {type(seg).__name__}")
        self.sample_lens.append(self.length - start)
        self.dataset_names.append(sample.dataset_name)
        self.sample_ids.append(sample.sample_id)
        return self.length - start

    def build(self) -> dict:
        """The packed batch (every key always present; empty tensors where a modality is absent), then resets."""
        long = _int64
        vit_dim = self.config.vit_patch_size ** 2 * 3
        batch = {
            "sequence_length": self.length,
            "sample_lens": list(self.sample_lens),
            "split_lens": list(self.split_lens),
            "attn_modes": list(self.attn_modes),
            "packed_text_ids": long(self.text_ids),
            "packed_text_indexes": long(self.text_indexes),
            "packed_position_ids": long(self.position_ids),
            "packed_vit_tokens": torch.cat(self.vit_tokens) if self.vit_tokens else torch.zeros(0, vit_dim),
            "packed_vit_position_ids": torch.cat(self.vit_position_ids) if self.vit_tokens else long([]),
            "packed_vit_token_indexes": long(self.vit_indexes),
            "vit_token_seqlens": long(self.vit_seqlens),
            "padded_images": _pad_images(self.vae_images),
            "patchified_vae_latent_shapes": list(self.vae_shapes),
            "packed_latent_position_ids": torch.cat(self.latent_position_ids) if self.vae_images else long([]),
            "packed_vae_token_indexes": long(self.vae_indexes),
            "packed_timesteps": torch.tensor(self.timesteps, dtype=torch.float32),
            "mse_loss_indexes": long(self.mse_indexes),
            "packed_label_ids": long(self.label_ids),
            "ce_loss_indexes": long(self.ce_indexes),
            "ce_loss_weights": torch.tensor(self.ce_weights, dtype=torch.float32),
            "dataset_name": list(self.dataset_names),
            "sample_ids": list(self.sample_ids),
            "packed_sample_ids": torch.repeat_interleave(torch.arange(len(self.sample_lens)), long(self.sample_lens)),
        }
        self._reset()
        return batch


def _int64(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def _pad_images(images: list[torch.Tensor]) -> torch.Tensor:
    """[n, 3, Hmax, Wmax], each image at the top-left corner, zeros elsewhere."""
    if not images:
        return torch.zeros(0, 3, 0, 0)
    height = max(img.shape[1] for img in images)
    width = max(img.shape[2] for img in images)
    padded = torch.zeros(len(images), 3, height, width)
    for i, img in enumerate(images):
        padded[i, :, : img.shape[1], : img.shape[2]] = img
    return padded


def pack_samples(samples: list[PackableSample], special: SpecialTokens, config: PackingConfig,
                 rng: np.random.Generator, dropout: ConditionDropout = NO_DROPOUT) -> dict:
    """Convenience: pack a fixed list of samples into one batch."""
    packer = BatchPacker(special, config, rng)
    for sample in samples:
        packer.add(sample, dropout)
    return packer.build()
