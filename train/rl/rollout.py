"""Group rollouts: one edit context per prompt, G edits sampled together with a window of SDE steps.

Per prompt (source image + instruction) the context is built once: [thinking system prompt] source image (VAE
tokens through the generation expert, then ViT tokens) and instruction, then the Meta-CoT (written by the
understanding expert, or the dataset's) in the cond context. The G members share that context: every denoising step
is one batched forward over all (CFG branch, member) pairs (``Bagel.plan_group_query``). What the update needs is kept
(window states, sampled next states, old log-probs, the seed that rebuilds the context); the trajectory is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from inference.contexts import GuidanceContexts
from inference.inferencer import BagelInferencer, noise_generator
from inference.settings import InferenceSettings, NoiseSource
from modeling.bagel.latents import unpatchify_latent
from modeling.diffusion.sampler import sde_window_sample
from modeling.diffusion.schedule import sampling_timesteps
from modeling.diffusion.sde_window import WindowSpec
from train.rl.policy import GroupPolicy, PolicySpec
from train.rl.prompts import EditPrompt

COT_SOURCES = ("model", "dataset", "none")


@dataclass(frozen=True)
class RolloutSettings:
    group_size: int = 16
    num_timesteps: int = 15  # grid points: num_timesteps - 1 denoising steps
    timestep_shift: float = 3.0
    window: WindowSpec = field(default_factory=lambda: WindowSpec(size=3))
    policy: PolicySpec = field(default_factory=PolicySpec)
    cot_source: str = "model"  # who writes the Meta-CoT the edit is conditioned on
    inference: InferenceSettings = field(default_factory=lambda: InferenceSettings(
        vae_transform=(512, 256, 16), vit_transform=(490, 224, 14), compile_layers=False))

    def __post_init__(self) -> None:
        if self.cot_source not in COT_SOURCES:
            raise ValueError(f"cot_source {self.cot_source!r}: choose one of {COT_SOURCES}")
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 (advantages compare members), got {self.group_size}")
        self.window.validate(self.num_timesteps - 1)

    def timesteps(self, device: torch.device) -> torch.Tensor:
        return sampling_timesteps(self.num_timesteps, self.timestep_shift, device)


@dataclass
class GroupRollout:
    prompt: EditPrompt
    cot_text: str | None  # the CoT the edits were conditioned on (reused when the context is rebuilt)
    seed: int
    grid_hw: tuple[int, int]
    window: list[int]  # SDE step indexes
    states: torch.Tensor  # [W, G, N, C] float32, x_j entering each window step
    next_states: torch.Tensor  # [W, G, N, C] float32, the sampled x_{j+1}
    old_logprobs: torch.Tensor  # [W, G] float32
    images: list[Image.Image]
    final_latents: torch.Tensor  # [G, N, C] float32 (tests compare rollouts with it; small)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (training seed, iteration, group index, member ...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32).astype(
        np.uint64).dot([1 << 31, 1]))


def build_contexts(inferencer: BagelInferencer, prompt: EditPrompt, settings: RolloutSettings, seed: int,
                   cot_text: str | None) -> GuidanceContexts:
    """The prompt's three guidance contexts, thinking mode unless ``cot_source`` is none, with ``cot_text`` as the
    thinking. Deterministic for a seed (the source latent's posterior draw), so an update rebuilds it exactly."""
    contexts, _ = inferencer.prepare_edit(prompt.source_image, prompt.instruction, settings.inference,
                                          think=settings.cot_source != "none",
                                          noise=NoiseSource(seed, inferencer.device))
    if cot_text is not None:
        contexts.add_thinking(cot_text)
    return contexts


def dataset_cot(prompt: EditPrompt, settings: RolloutSettings) -> str | None:
    if settings.cot_source != "dataset":
        return None
    if prompt.cot_text is None:
        raise ValueError(f"prompt {prompt.id!r} has no dataset CoT; use rollout.cot_source=model or none")
    return prompt.cot_text


def decode_latents(inferencer: BagelInferencer, tokens: torch.Tensor, grid_hw: tuple[int, int]) -> list[Image.Image]:
    """Latent tokens [G, N, C] -> G RGB images (one batched VAE decode; the inferencer's clamp and rounding)."""
    patch = inferencer.bundle.config.bagel.latent_patch_size
    latents = torch.stack([unpatchify_latent(t, *grid_hw, patch) for t in tokens])
    with torch.no_grad():
        pixels = inferencer.bundle.vae.decode(latents).float()
    arrays = ((pixels * 0.5 + 0.5).clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arrays]


def latent_grid(inferencer: BagelInferencer, contexts: GuidanceContexts) -> tuple[int, int]:
    stride = inferencer.bundle.vae.downsample * inferencer.bundle.config.bagel.latent_patch_size
    return contexts.image_hw[0] // stride, contexts.image_hw[1] // stride


@torch.no_grad()
def rollout_group(inferencer: BagelInferencer, prompt: EditPrompt, settings: RolloutSettings, iteration: int,
                  seed: int, one_at_a_time: bool = False, context_per_member: bool = False) -> GroupRollout:
    """Sample the G edits of one prompt. Member g draws its initial noise and SDE noise from its own generator
    (seed, g). Baselines for benchmarks and tests, with the same draws: ``one_at_a_time`` runs the members one after
    another over the shared context; with ``context_per_member`` too, each member rebuilds the context first, as the
    open BAGEL ports roll out (the CoT is still written once)."""
    device, group = inferencer.device, settings.group_size
    cot_text = dataset_cot(prompt, settings)
    contexts = build_contexts(inferencer, prompt, settings, seed, cot_text)
    if settings.cot_source == "model":  # written once per prompt by the (frozen) understanding expert
        cot_text = inferencer.generate_text(contexts.cond, settings.inference, noise_generator(seed)).text
        contexts.add_thinking(cot_text)
    grid = latent_grid(inferencer, contexts)
    shape = (grid[0] * grid[1], inferencer.bundle.config.patch_latent_dim)
    generators = [torch.Generator().manual_seed(derive_seed(seed, g)) for g in range(group)]
    window = settings.window.steps(iteration, torch.Generator().manual_seed(seed))
    timesteps = settings.timesteps(device)
    batches = [list(range(group))] if not (one_at_a_time or context_per_member) else [[g] for g in range(group)]
    finals, records = [], []
    for members in batches:
        gens = [generators[g] for g in members]

        def draw(_step: int, gens=gens) -> torch.Tensor:
            return torch.stack([torch.randn(shape, generator=gen) for gen in gens]).to(device)

        if context_per_member and members[0] > 0:
            contexts = build_contexts(inferencer, prompt, settings, seed, cot_text)
        policy = GroupPolicy(inferencer.model, contexts, grid, len(members), settings.policy, timesteps)
        final, record = sde_window_sample(lambda x, t, _i, p=policy: p.velocity(x, t), draw(-1), timesteps, window,
                                          policy.distribution, draw)
        finals.append(final)
        records.append(record)

    def stacked(name: str, empty_shape: tuple[int, ...]) -> torch.Tensor:
        if not window:
            return torch.zeros(empty_shape, device=device)
        return torch.cat([torch.stack(getattr(r, name)) for r in records], dim=1)  # members along dim 1

    final = torch.cat(finals)
    return GroupRollout(prompt=prompt, cot_text=cot_text, seed=seed, grid_hw=grid, window=window,
                        states=stacked("states", (0, group, *shape)),
                        next_states=stacked("next_states", (0, group, *shape)),
                        old_logprobs=stacked("logprobs", (0, group)), images=decode_latents(inferencer, final, grid),
                        final_latents=final)
