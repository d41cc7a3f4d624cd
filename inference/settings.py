"""Inference knobs (the official model's, with the demo app's edit defaults) and the sources of random draws."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch

from modeling.diffusion.guidance import RENORM_TYPES


@dataclass
class InferenceSettings:
    cfg_text_scale: float = 4.0
    cfg_img_scale: float = 2.0
    cfg_interval: tuple[float, float] = (0.4, 1.0)
    cfg_renorm_min: float = 0.0
    cfg_renorm_type: str = "global"
    timestep_shift: float = 3.0
    num_timesteps: int = 50
    max_think_token_n: int = 1024  # counts the bos fed first, as the original
    do_sample: bool = False
    temperature: float = 0.3
    # [max_size, min_size, stride] of the image transforms (official: VAE 1024/512/16, ViT 980/224/14)
    vae_transform: tuple[int, int, int] = (1024, 512, 16)
    vit_transform: tuple[int, int, int] = (980, 224, 14)
    batch_cfg: bool = True  # run the CFG branches as one batched forward (False: one forward per branch)
    cuda_graphs: bool = True  # replay text decoding steps as a CUDA graph (on CUDA devices)
    # torch.compile the decoder layers for denoising and decoding steps: faster steps (fused per-token work), but the
    # first call of each shape pays the compilation, so it pays off over many edits (see README's inference figures)
    compile_layers: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cfg_renorm_type not in RENORM_TYPES:
            raise ValueError(f"cfg_renorm_type must be one of {RENORM_TYPES}, got {self.cfg_renorm_type!r}")
        if self.num_timesteps < 2:
            raise ValueError(f"num_timesteps must be >= 2, got {self.num_timesteps}")
        if self.max_think_token_n < 1:
            raise ValueError(f"max_think_token_n must be >= 1, got {self.max_think_token_n}")
        if len(self.cfg_interval) != 2 or not 0.0 <= self.cfg_interval[0] <= self.cfg_interval[1] <= 1.0:
            raise ValueError(f"cfg_interval must be [lo, hi] with 0 <= lo <= hi <= 1, got {self.cfg_interval}")
        self.cfg_interval = tuple(float(v) for v in self.cfg_interval)
        self.vae_transform, self.vit_transform = tuple(self.vae_transform), tuple(self.vit_transform)

    @classmethod
    def from_dict(cls, values: dict) -> "InferenceSettings":
        """Known keys become fields (an unknown key is an error naming the valid ones)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown inference setting(s) {unknown}; valid: {sorted(names - {'extra'})}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


class NoiseSource:
    """Random draws of an edit, from a seeded generator (the same seed gives the same image)."""

    def __init__(self, seed: int, device: torch.device | str = "cpu"):
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.device = device

    def draw(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:  # name: "vae_encode_eps" / "init_noise"
        return torch.randn(shape, generator=self.generator).to(self.device)


class RecordedNoise(NoiseSource):
    """Draws replayed in order from a recording (reference fixtures list them in ``case.json['random_draws']``)."""

    def __init__(self, draws: list[tuple[str, torch.Tensor]], device: torch.device | str = "cpu"):
        self.draws, self.device = list(draws), device

    def draw(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        if not self.draws:
            raise ValueError(f"no recorded draw left for {name}")
        recorded_name, tensor = self.draws.pop(0)
        if not recorded_name.startswith(name) or tuple(tensor.shape) != tuple(shape):
            raise ValueError(f"recorded draw {recorded_name} {tuple(tensor.shape)} does not match {name} {shape}")
        return tensor.to(self.device)
