"""Build the RL components from a config: the SFT checkpoint (model, VAE, tokenizer), this rank's prompt stream,
the reward (by kind, ``rewards/registry.py``) and the exporter to the official layout."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from inference.inferencer import BagelInferencer
from modeling.bagel.loader import BagelBundle, build_bagel, export_bagel, load_bagel
from modeling.vae.autoencoder import FluxAutoencoder
from train.common.distributed import DistInfo
from train.common.parallelize import DTYPES
from train.rl.config import RLConfig
from train.rl.loop import RLComponents
from train.rl.prompts import ShardedPromptStream
from train.rl.rewards.registry import build_reward


def build_rl_components(cfg: RLConfig, info: DistInfo) -> RLComponents:
    m = cfg.model
    bundle = load_bagel(m.model_dir, DTYPES[m.dtype], info.device, m.attn_backend, vae_dtype=DTYPES[m.vae_dtype])
    bundle.vae.requires_grad_(False)
    prompts = ShardedPromptStream(cfg.data.paths, info.rank, info.world_size, cfg.data.seed, cfg.data.image_root,
                                  cfg.data.max_prompts, require_cot=cfg.rollout.cot_source == "dataset")
    reward = build_reward(cfg.reward.kind, cfg.reward.settings)

    def export(state: dict[str, torch.Tensor], out_dir: str) -> None:
        shapes = build_bagel(bundle.config, "meta", special_tokens=bundle.special_tokens)
        vae = FluxAutoencoder(bundle.config.ae)  # written as read (float32), whatever dtype training decodes in
        vae.load_official_state_dict(load_file(str(Path(m.model_dir) / "ae.safetensors")))
        export_bagel(BagelBundle(shapes, vae, bundle.tokenizer, bundle.special_tokens, bundle.config), out_dir,
                     state_dict=state)

    return RLComponents(BagelInferencer(bundle), prompts, reward, export)
