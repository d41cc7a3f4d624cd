"""The three contexts of guided generation and how inputs update them (the original interleaved inferencer's rules).

- ``cond``: everything (system prompt, images, texts, thinking);
- ``text_uncond`` (cfg_text): the cond context as it was before the last text prompt was added;
- ``img_uncond`` (cfg_img): the text inputs only (system prompt + prompts), no image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from data.transforms import ImageTransform, patchify
from modeling.bagel.kv_cache import KVCache
from modeling.bagel.loader import BagelBundle

from .settings import NoiseSource


@dataclass
class ImageInputs:
    """What an input image became: the resized image and the tensors fed to the AE and the ViT."""

    resized: Image.Image
    vae_pixels: torch.Tensor | None  # [3, H, W] in [-1, 1]
    vit_pixels: torch.Tensor  # [3, H', W']


class GuidanceContexts:
    def __init__(self, bundle: BagelBundle, vae_transform: ImageTransform, vit_transform: ImageTransform,
                 for_generation: bool):
        self.bundle, self.model = bundle, bundle.model
        self.vae_transform, self.vit_transform = vae_transform, vit_transform
        self.for_generation = for_generation
        self.cond, self.img_uncond = self.model.new_cache(), self.model.new_cache()
        self.text_uncond = self.cond.fork()
        self.image_hw: tuple[int, int] | None = None  # (H, W) of the last input image after the VAE resize
        self.images: list[ImageInputs] = []

    def _text_ids(self, text: str) -> torch.Tensor:
        special = self.bundle.special_tokens
        ids = self.bundle.tokenizer.encode(text, add_special_tokens=False)
        return torch.tensor([special.bos, *ids, special.eos], device=self.cond.device)

    def add_system_prompt(self, text: str) -> None:
        ids = self._text_ids(text)
        self.model.prefill_text(self.cond, ids)
        self.model.prefill_text(self.img_uncond, ids)
        self.text_uncond = self.cond.fork()

    def add_text(self, text: str) -> None:
        ids = self._text_ids(text)
        self.text_uncond = self.cond.fork()
        self.model.prefill_text(self.cond, ids)
        self.model.prefill_text(self.img_uncond, ids)

    def add_thinking(self, text: str) -> None:
        """Thinking text conditions the cond context only."""
        self.model.prefill_text(self.cond, self._text_ids(text))

    def add_reply(self, text: str) -> None:
        """Model-written text that the next image follows as an instruction (a reflection verdict with its refined
        instruction): cond and img_uncond get it; text_uncond keeps the context before the prompt that asked for it."""
        ids = self._text_ids(text)
        self.model.prefill_text(self.cond, ids)
        self.model.prefill_text(self.img_uncond, ids)

    def add_image(self, image: Image.Image, noise: NoiseSource) -> ImageInputs:
        """VAE block (generation mode) then ViT block into cond; the image is resized by the VAE transform first."""
        resized = self.vae_transform.resize(image)
        device = self.cond.device
        vae_pixels = None
        if self.for_generation:
            vae_pixels = self.vae_transform(resized)
            vae = self.bundle.vae
            down = vae.downsample
            eps = noise.draw("vae_encode_eps", (1, vae.args.z_channels, vae_pixels.shape[1] // down,
                                                vae_pixels.shape[2] // down))
            latent = vae.encode(vae_pixels[None].to(device), eps=eps.to(device))[0]
            self.model.prefill_vae(self.cond, latent.to(self.model.vae2llm.weight.dtype))
        vit_pixels = self.vit_transform(resized)
        patch = self.model.config.vit.patch_size
        grid = (vit_pixels.shape[1] // patch, vit_pixels.shape[2] // patch)
        self.model.prefill_vit(self.cond, patchify(vit_pixels, patch).to(device), grid)
        self.text_uncond = self.cond.fork()
        self.image_hw = (resized.height, resized.width)
        inputs = ImageInputs(resized, vae_pixels, vit_pixels)
        self.images.append(inputs)
        return inputs

    def branches(self, text_scale: float, img_scale: float) -> dict[str, KVCache]:
        """The contexts a guided step runs: cond, cfg_text if text_scale > 1, cfg_img if img_scale > 1."""
        out = {"cond": self.cond}
        if text_scale > 1.0:
            out["cfg_text"] = self.text_uncond
        if img_scale > 1.0:
            out["cfg_img"] = self.img_uncond
        return out

