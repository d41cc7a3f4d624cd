"""Build the SFT components from a config: BAGEL (official folder or random weights), its AE, and the data stream.

Memory: only rank 0 reads the weights into CPU memory; every rank builds the model on the meta device, FSDP2
shards it, and ``materialize`` allocates each rank's shards and broadcasts the values from rank 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import load_file
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

from data.mix_config import load_mix
from data.packed_dataset import DataStateTracker, PackedMixDataset, make_loader
from data.packing import SpecialTokens as DataSpecialTokens
from inference.inferencer import BagelInferencer
from modeling.bagel.config import BagelConfig, config_from_reference_json, load_config
from modeling.bagel.loader import (BagelBundle, build_bagel, export_bagel, load_bagel, load_tokenizer,
                                   reset_non_persistent_buffers)
from modeling.bagel.model import QWEN25_SPECIAL_TOKENS, SpecialTokens
from modeling.vae.autoencoder import FluxAutoencoder
from train.common.distributed import DistInfo
from train.common.flops import ModelWidths
from train.common.parallelize import DTYPES
from train.sft.components import TrainComponents
from train.sft.config import SFTConfig
from train.sft.init_from_components import components_config, components_state
from train.sft.synthetic_data import SyntheticEditStream
from train.sft.validation import ValidationPrompt, load_prompts, run_validation
from train.sft.vit_padding import pad_missing_vit

BLOCK_LISTS = ("language_model.model.layers", "vit_model.vision_model.encoder.layers")


class MixBatchStream:
    """The data package's packed mix loader behind the trainer's stream protocol (state = DataStateTracker's)."""

    def __init__(self, mix_path: str, tokenizer: Any, special: SpecialTokens, rank: int, world_size: int,
                 num_workers: int, vit_patch_dim: int) -> None:
        self.mix = load_mix(mix_path)
        self.special = special
        self.vit_patch_dim = vit_patch_dim
        self.args = (tokenizer, DataSpecialTokens(special.bos, special.eos, special.start_of_image,
                                                  special.end_of_image), rank, world_size, num_workers)
        self.tracker = DataStateTracker()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        tokenizer, special, rank, world_size, num_workers = self.args
        dataset = PackedMixDataset(self.mix, tokenizer, special, rank, world_size, num_workers,
                                   self.tracker.state_dict())
        # Creating a DataLoader iterator draws its base seed from the global torch RNG; keep that draw out of the
        # trainer's RNG stream, or a resumed run (which creates it at another step) would diverge.
        with torch.random.fork_rng(devices=[]):
            batches = iter(make_loader(dataset))
        for batch in batches:
            self.tracker.update(batch)
            if world_size > 1:
                batch = pad_missing_vit(batch, self.vit_patch_dim, self.special.start_of_image,
                                        self.special.end_of_image)
            yield batch

    def state_dict(self) -> dict:
        return self.tracker.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.tracker = DataStateTracker(state)


def _bagel_config(cfg: SFTConfig) -> BagelConfig:
    m = cfg.model
    if m.model_dir is not None:
        return load_config(m.model_dir)
    if m.components is not None:
        return components_config(m.components)
    config = config_from_reference_json(m.random_init_configs)
    if m.llm_layers is not None:
        config.llm.num_hidden_layers = m.llm_layers
    if m.vit_layers is not None:
        config.vit.num_hidden_layers = m.vit_layers
    return config


def _tokenizer(cfg: SFTConfig) -> tuple[Any, SpecialTokens]:
    """The folder's tokenizer and special ids; random init has no tokenizer (synthetic token ids only)."""
    if cfg.model.model_dir is not None or cfg.model.components is not None:
        return load_tokenizer(cfg.model.model_dir or cfg.model.components.llm_dir)
    return None, _reference_special_tokens(cfg.model.random_init_configs)


def _reference_special_tokens(path: str) -> SpecialTokens:
    """BAGEL's special-token ids from a configs JSON ('tokenizer.new_token_ids'), else Qwen2.5's."""
    ids = json.loads(Path(path).read_text()).get("tokenizer", {}).get("new_token_ids")
    if ids is None:
        return QWEN25_SPECIAL_TOKENS
    return SpecialTokens(ids["bos_token_id"], ids["eos_token_id"], ids["start_of_image"], ids["end_of_image"])


def _initial_state(cfg: SFTConfig, config: BagelConfig, special: SpecialTokens) -> dict[str, torch.Tensor]:
    """Rank 0's full float32 state dict: official EMA weights, Qwen2.5 + SigLIP, or seeded random weights."""
    if cfg.model.model_dir is not None:
        return load_bagel(cfg.model.model_dir, dtype=torch.float32, device="cpu").model.state_dict()
    if cfg.model.components is not None:
        return components_state(cfg.model.components, config, special, cfg.train.seed)
    return build_bagel(config, "cpu", special_tokens=special, init_seed=cfg.train.seed).state_dict()


def _autoencoder(cfg: SFTConfig, config: BagelConfig, device: torch.device, dtype: torch.dtype) -> FluxAutoencoder:
    vae = FluxAutoencoder(config.ae)
    if cfg.model.model_dir is not None:
        vae.load_official_state_dict(load_file(str(Path(cfg.model.model_dir) / "ae.safetensors")))
    elif cfg.model.components is not None:
        vae.load_official_state_dict(load_file(cfg.model.components.ae_path))
    vae.requires_grad_(False)
    return vae.to(device=device, dtype=dtype).eval()


def bundle_for_export(cfg: SFTConfig) -> BagelBundle:
    """What ``export_bagel`` needs besides the weights: configs, AE, tokenizer (a model of shapes only)."""
    config = _bagel_config(cfg)
    tokenizer, special = _tokenizer(cfg)
    model = build_bagel(config, "meta", special_tokens=special)
    # The AE is written as read (float32 on CPU), whatever dtype training encodes in.
    return BagelBundle(model, _autoencoder(cfg, config, torch.device("cpu"), torch.float32), tokenizer, special, config)


def build_sft_components(cfg: SFTConfig, info: DistInfo) -> TrainComponents:
    config = _bagel_config(cfg)
    tokenizer, special = _tokenizer(cfg)
    model = build_bagel(config, "meta", special_tokens=special, attn_backend=cfg.model.attn_backend)
    full_state = _initial_state(cfg, config, special) if info.is_main else {}
    vae = _autoencoder(cfg, config, info.device, DTYPES[cfg.model.vae_dtype])

    if cfg.data.source == "synthetic_edit":
        data = SyntheticEditStream(cfg.data.synthetic, DataSpecialTokens(special.bos, special.eos,
                                   special.start_of_image, special.end_of_image), info.rank, info.world_size,
                                   config.bagel.vit_max_num_patch_per_side, config.bagel.max_latent_size)
    else:
        if tokenizer is None:
            raise ValueError("data.source=mix needs a tokenizer: start from model.model_dir (the official folder), "
                             "or use data.source=synthetic_edit with random weights")
        data = MixBatchStream(cfg.data.mix, tokenizer, special, info.rank, info.world_size, cfg.data.num_workers,
                              config.vit.num_channels * config.vit.patch_size ** 2)

    def materialize(sharded: nn.Module, device: torch.device) -> None:
        sharded.to_empty(device=device)
        reset_non_persistent_buffers(sharded)
        set_model_state_dict(sharded, full_state,
                             options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
        full_state.clear()

    def export(state: dict[str, torch.Tensor], out_dir: str) -> None:
        export_bagel(bundle_for_export(cfg), out_dir, state_dict=state)

    prompts: list[ValidationPrompt] = []

    def validate(state: dict[str, torch.Tensor], out_dir: str) -> Any:
        if not prompts:
            prompts.extend(load_prompts(cfg.validation.prompts))
        copy = build_bagel(config, "meta", special_tokens=special, attn_backend=cfg.model.attn_backend)
        copy.load_state_dict(state, strict=True, assign=True)
        reset_non_persistent_buffers(copy)
        bundle = BagelBundle(copy.to(info.device).eval(), vae, tokenizer, special, config)
        return run_validation(BagelInferencer(bundle), prompts, cfg.validation, out_dir)

    return TrainComponents(model=model, data=data, block_lists=BLOCK_LISTS, materialize=materialize,
                           validate=validate if cfg.validation.every and tokenizer is not None else None,
                           encode_images=lambda pixels: vae.encode(pixels).float(),
                           widths=ModelWidths.from_bagel_config(config), export=export)
