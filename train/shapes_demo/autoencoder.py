"""Train a small FLUX-architecture autoencoder on ShapesEdit images and measure whether the world survives it.

The AE is ``modeling.vae.FluxAutoencoder`` (diffusers' AutoencoderKL with FLUX key names) at a small width. Loss:
L1 + L2 on pixels of a posterior sample's decoding (so the decoder tolerates imperfect latents, as the generator's
are) + a small KL. Images are sources and targets of edit samples of every category (zoomed shapes included),
rendered at ``size``. After training, the latent shift and scale are set from data (mean and 1/std of the
posterior means), and held-out images give the reconstruction error and the exact judge's read-back rate: the share
of reconstructions whose scene reads back exactly (no model can score 10 on images its AE cannot reproduce).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from data.shapes_edit.export import CATEGORY_NAMES
from data.shapes_edit.recover import recover_scene
from data.shapes_edit.render import render_array
from data.shapes_edit.scene import Scene
from data.shapes_edit.tasks import make_edit_sample
from modeling.bagel.config import AutoEncoderArgs
from modeling.vae.autoencoder import FluxAutoencoder


@dataclass
class AETrainSettings:
    size: int = 128              # image side in pixels
    steps: int = 3000
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 100
    kl_weight: float = 1e-6
    train_samples: int = 6000    # edit samples rendered for training (2 images each)
    eval_samples: int = 200      # held-out samples (their targets are the evaluation images)
    seed: int = 0
    log_every: int = 200


def world_scenes(num_samples: int, stream: str) -> list[Scene]:
    """Sources and targets of ``num_samples`` edit samples cycling through the categories."""
    scenes = []
    for i in range(num_samples):
        sample = make_edit_sample(CATEGORY_NAMES[i % len(CATEGORY_NAMES)], f"{stream}/{i}")
        scenes += [sample.source, sample.target]
    return scenes


def render_batch(scenes: list[Scene], size: int) -> torch.Tensor:
    """uint8 [N, 3, size, size]."""
    return torch.from_numpy(np.stack([render_array(s, size) for s in scenes])).permute(0, 3, 1, 2).contiguous()


def to_unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1.0


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """The inferencer's conversion: clamp(x / 2 + 1/2) * 255, truncated."""
    return ((pixels.float() * 0.5 + 0.5).clamp(0, 1) * 255).to(torch.uint8)


def _lr(step: int, s: AETrainSettings) -> float:
    if step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    progress = (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_autoencoder(args: AutoEncoderArgs, s: AETrainSettings, device: torch.device,
                      log=print) -> FluxAutoencoder:
    torch.manual_seed(s.seed)
    vae = FluxAutoencoder(args).to(device)
    vae.model.requires_grad_(True)
    vae.train()
    images = render_batch(world_scenes(s.train_samples, f"ae/{s.seed}"), s.size).to(device)
    optimizer = torch.optim.AdamW(vae.model.parameters(), lr=s.lr, betas=(0.9, 0.99), weight_decay=0.0)
    generator = torch.Generator(device=device).manual_seed(s.seed)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    began = time.perf_counter()
    for step in range(s.steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, s)
        index = torch.randint(len(images), (s.batch_size,), device=device, generator=generator)
        pixels = to_unit(images[index])
        with autocast:
            mean, logvar = vae.encode_moments(pixels).float().chunk(2, dim=1)
            logvar = logvar.clamp(-30.0, 20.0)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            recon = vae.model.decoder(z).float()
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1.0 - logvar).sum(dim=(1, 2, 3)).mean()
        loss = (recon - pixels).abs().mean() + ((recon - pixels) ** 2).mean() + s.kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.model.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % s.log_every == 0 or step + 1 == s.steps:
            log(f"ae step {step + 1}/{s.steps} loss {loss.item():.4f} kl {kl.item():.1f} "
                f"({time.perf_counter() - began:.0f} s)")
    vae.model.requires_grad_(False)
    return vae.eval()


@torch.no_grad()
def set_latent_statistics(vae: FluxAutoencoder, images: torch.Tensor, batch_size: int = 64) -> None:
    """shift = mean, scale = 1 / std of the posterior means over ``images`` (uint8 [N, 3, H, W])."""
    means = torch.cat([vae.encode_moments(to_unit(images[i:i + batch_size])).float().chunk(2, dim=1)[0]
                       for i in range(0, len(images), batch_size)])
    vae.args.shift_factor = round(float(means.mean()), 4)
    vae.args.scale_factor = round(1.0 / float(means.std()), 4)


@torch.no_grad()
def evaluate_autoencoder(vae: FluxAutoencoder, scenes: list[Scene], size: int, batch_size: int = 64) -> dict:
    """Reconstruction error (PSNR, mean absolute error in levels) and exact read-back rate, through the posterior mean
    and through a posterior sample."""
    images = render_batch(scenes, size).to(next(vae.parameters()).device)
    out: dict[str, float] = {"images": len(scenes)}
    for name, sample in (("mean", False), ("sample", True)):
        generator = torch.Generator(device=images.device).manual_seed(0)
        recon = torch.cat([to_uint8(vae.decode(vae.encode(to_unit(images[i:i + batch_size]), sample=sample,
                                                          generator=generator)))
                           for i in range(0, len(images), batch_size)])
        error = recon.float() - images.float()
        mse = float((error ** 2).mean())
        exact = sum(recover_scene(Image.fromarray(r.permute(1, 2, 0).cpu().numpy())) == scene
                    for r, scene in zip(recon, scenes))
        out[f"{name}_psnr_db"] = round(10 * math.log10(255 ** 2 / max(mse, 1e-10)), 2)
        out[f"{name}_mean_abs_error_levels"] = round(float(error.abs().mean()), 3)
        out[f"{name}_readback_rate"] = round(exact / len(scenes), 4)
    return out


def save_autoencoder(vae: FluxAutoencoder, out_dir: str | Path, metrics: dict) -> Path:
    """``ae.safetensors`` (FLUX key names, float32) + ``ae_config.json`` + ``ae_metrics.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous().cpu() for k, v in vae.official_state_dict().items()}
    save_file(state, str(out / "ae.safetensors"))
    (out / "ae_metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "ae_config.json").write_text(json.dumps(asdict(vae.args), indent=2))  # last: marks the folder complete
    return out
