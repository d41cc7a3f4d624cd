"""From-scratch init from Hugging Face Qwen2 + SigLIP folders and a FLUX AE file (tiny random stand-ins)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

from data.transforms import patchify
from modeling.bagel.config import BagelArgs
from modeling.bagel.model import SpecialTokens
from train.common.config import from_dict
from train.common.distributed import init_distributed
from train.sft.build import build_sft_components
from train.sft.config import SFTConfig
from train.sft.loop import run_sft
from train.sft.init_from_components import (ComponentsConfig, components_config, components_state,
                                            read_safetensors_folder)
from tests.fixture_paths import TINY

SPECIAL = SpecialTokens(481, 482, 483, 484)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> ComponentsConfig:
    root = tmp_path_factory.mktemp("components")
    torch.manual_seed(0)
    llm = Qwen2ForCausalLM(Qwen2Config(vocab_size=485, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False))
    llm.save_pretrained(root / "qwen")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json"):
        shutil.copy(TINY / name, root / "qwen" / name)
    vit = SiglipVisionModel(SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                               num_attention_heads=2, image_size=56, patch_size=14))
    vit.save_pretrained(root / "siglip")
    return ComponentsConfig(llm_dir=str(root / "qwen"), vit_dir=str(root / "siglip"),
                            ae_path=str(TINY / "ae.safetensors"), ae_config=str(TINY / "ae_config.json"))


def test_weights_land_in_both_experts_and_the_vit(folders: ComponentsConfig) -> None:
    config = components_config(folders, BagelArgs(vit_max_num_patch_per_side=8, max_latent_size=16))
    assert config.vit.num_hidden_layers == 2 and config.vit.image_size == 8 * 14
    state = components_state(folders, config, SPECIAL, seed=0)
    qwen = Qwen2ForCausalLM.from_pretrained(folders.llm_dir).state_dict()
    for suffix in ("self_attn.q_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight"):
        und = state[f"language_model.model.layers.1.{suffix}"]
        gen_suffix = suffix.replace("q_proj", "q_proj_moe_gen").replace("mlp.", "mlp_moe_gen.").replace(
            "input_layernorm", "input_layernorm_moe_gen")
        assert torch.equal(und, qwen[f"model.layers.1.{suffix}"])
        assert torch.equal(state[f"language_model.model.layers.1.{gen_suffix}"], und)
    assert torch.equal(state["language_model.lm_head.weight"], qwen["lm_head.weight"])
    assert torch.equal(state["language_model.model.layers.0.self_attn.q_norm.weight"], torch.ones(16))

    saved = {k.removeprefix("vision_model."): v for k, v in read_safetensors_folder(folders.vit_dir).items()}
    weight, bias = saved["embeddings.patch_embedding.weight"], saved["embeddings.patch_embedding.bias"]
    image = torch.randn(3, 28, 42)
    expected = F.conv2d(image[None], weight, bias, stride=14)[0].flatten(1).T  # [6 patches, 32], row-major
    got = F.linear(patchify(image, 14), state["vit_model.vision_model.embeddings.patch_embedding.weight"],
                   state["vit_model.vision_model.embeddings.patch_embedding.bias"])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    table = state["vit_model.vision_model.embeddings.position_embedding.weight"]
    assert table.shape == (64, 32)  # 4x4 learned grid resized to 8x8
    assert "vit_model.vision_model.encoder.layers.2.mlp.fc1.weight" not in state


def test_sft_step_from_components(folders: ComponentsConfig, tmp_path) -> None:
    cfg = from_dict(SFTConfig, {
        "output_dir": str(tmp_path), "model": {"components": vars(folders), "vae_dtype": "float32"},
        "data": {"source": "synthetic_edit", "synthetic": {"samples_per_batch": 2, "text_tokens": 24, "vit_side": 42,
                                                            "vae_side": 48, "vocab_limit": 480}},
        "parallel": {"param_dtype": "float32"}, "train": {"total_steps": 1, "device": "cpu"},
        "logging": {"tensorboard": False},
    })
    info = init_distributed("cpu")
    summary = run_sft(cfg, build_sft_components(cfg, info), info)
    assert summary.final_step == 1 and torch.isfinite(torch.tensor(summary.losses[1]))
    assert (tmp_path / "export" / "final" / "ema.safetensors").is_file()
