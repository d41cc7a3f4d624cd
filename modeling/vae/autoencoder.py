"""The FLUX autoencoder through ``diffusers.AutoencoderKL``, loaded from and exported to official FLUX key names.

latent = scale * (z - shift), where z is the posterior mean or a posterior sample; decoding inverts it.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from diffusers import AutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from torch import nn

from modeling.bagel.config import AutoEncoderArgs
from modeling.bagel.state_dict_adapter import check_state_dict


def diffusers_vae_config(args: AutoEncoderArgs) -> dict:
    levels = len(args.ch_mult)
    return dict(
        in_channels=args.in_channels,
        out_channels=args.out_ch,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(args.ch * m for m in args.ch_mult),
        layers_per_block=args.num_res_blocks,
        latent_channels=args.z_channels,
        norm_num_groups=32,
        sample_size=args.resolution,
        scaling_factor=args.scale_factor,
        shift_factor=args.shift_factor,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def official_ae_shapes(args: AutoEncoderArgs) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the FLUX autoencoder state dict (``ae.safetensors``) for these parameters."""
    ch, z, shapes = args.ch, args.z_channels, {}

    def conv(name: str, cin: int, cout: int, k: int = 3) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cin, k, k), (cout,)

    def norm(name: str, c: int) -> None:
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (c,), (c,)

    def resblock(name: str, cin: int, cout: int) -> None:
        norm(f"{name}.norm1", cin)
        conv(f"{name}.conv1", cin, cout)
        norm(f"{name}.norm2", cout)
        conv(f"{name}.conv2", cout, cout)
        if cin != cout:
            conv(f"{name}.nin_shortcut", cin, cout, 1)

    def mid(prefix: str, c: int) -> None:
        resblock(f"{prefix}.mid.block_1", c, c)
        norm(f"{prefix}.mid.attn_1.norm", c)
        for p in ("q", "k", "v", "proj_out"):
            conv(f"{prefix}.mid.attn_1.{p}", c, c, 1)
        resblock(f"{prefix}.mid.block_2", c, c)

    mults = args.ch_mult
    conv("encoder.conv_in", args.in_channels, ch)
    cin = ch
    for i, m in enumerate(mults):
        for b in range(args.num_res_blocks):
            resblock(f"encoder.down.{i}.block.{b}", cin, ch * m)
            cin = ch * m
        if i != len(mults) - 1:
            conv(f"encoder.down.{i}.downsample.conv", cin, cin)
    mid("encoder", cin)
    norm("encoder.norm_out", cin)
    conv("encoder.conv_out", cin, 2 * z)
    top = ch * mults[-1]
    conv("decoder.conv_in", z, top)
    mid("decoder", top)
    cin = top
    for i in reversed(range(len(mults))):
        for b in range(args.num_res_blocks + 1):
            resblock(f"decoder.up.{i}.block.{b}", cin, ch * mults[i])
            cin = ch * mults[i]
        if i != 0:
            conv(f"decoder.up.{i}.upsample.conv", cin, cin)
    norm("decoder.norm_out", cin)
    conv("decoder.conv_out", cin, args.out_ch)
    return shapes


@lru_cache(maxsize=8)
def _official_to_diffusers_names(args_key: tuple) -> dict[str, str]:
    """Official key -> diffusers key, found by running diffusers' converter on one-element marker tensors."""
    args = AutoEncoderArgs(**{k: list(v) if isinstance(v, tuple) else v for k, v in args_key})
    shapes = official_ae_shapes(args)
    names = sorted(shapes)
    markers = {n: torch.full((1,) * len(shapes[n]), float(i), dtype=torch.float64) for i, n in enumerate(names)}
    converted = convert_ldm_vae_checkpoint(markers, diffusers_vae_config(args))
    return {names[int(t.flatten()[0].item())]: dk for dk, t in converted.items()}


def _names(args: AutoEncoderArgs) -> dict[str, str]:
    return _official_to_diffusers_names(tuple((k, tuple(v) if isinstance(v, list) else v)
                                              for k, v in sorted(vars(args).items())))


class FluxAutoencoder(nn.Module):
    def __init__(self, args: AutoEncoderArgs):
        super().__init__()
        self.args = args
        self.model = AutoencoderKL(**diffusers_vae_config(args))
        self.model.requires_grad_(False)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.args.ch_mult) - 1)

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        own = self.model.state_dict()
        shapes = official_ae_shapes(self.args)
        return {ok: own[dk].reshape(shapes[ok]) for ok, dk in _names(self.args).items()}

    def load_official_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Strict load of FLUX-named weights; shapes are checked against the configured architecture."""
        shapes = official_ae_shapes(self.args)
        check_state_dict(state, shapes, "ae.safetensors")
        own = self.model.state_dict()
        mapped = {dk: state[ok].reshape(own[dk].shape) for ok, dk in _names(self.args).items()}
        self.model.load_state_dict(mapped, strict=True)

    def encode_moments(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> [B, 2*z, H/8, W/8] (mean, log-variance)."""
        return self.model.encoder(pixels.to(self.model.dtype))

    def encode(self, pixels: torch.Tensor, eps: torch.Tensor | None = None, sample: bool = True,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled latent [B, z, H/8, W/8]: posterior sample (mean + std * eps) unless ``sample`` is False."""
        mean, logvar = self.encode_moments(pixels).chunk(2, dim=1)
        z = mean
        if sample:
            if eps is None:
                eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = mean + torch.exp(0.5 * logvar) * eps.to(mean)
        return self.args.scale_factor * (z - self.args.shift_factor)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Scaled latent [B, z, h, w] -> pixels [B, 3, 8h, 8w] (raw decoder output, not clamped)."""
        z = latent.to(self.model.dtype) / self.args.scale_factor + self.args.shift_factor
        return self.model.decoder(z)
