"""Start BAGEL from scratch: a Qwen2.5 LLM folder, a SigLIP folder and a FLUX autoencoder file (Hugging Face layouts).

As the original pre-training script does: the LLM weights become the understanding expert and are copied into the
generation expert (``copy_init_moe``); the q/k RMSNorms the MoT layer adds start at one; the SigLIP encoder keeps
``num_hidden_layers - 1`` layers (features of the second-to-last layer), its patch convolution becomes the Linear
BAGEL uses (features ordered row-in-patch, col-in-patch, channel), and its pooling head is dropped. Our choice where
the original does not say: a learned ViT position table whose grid differs from ``vit_max_num_patch_per_side`` is
resized bicubically. Connector, vae2llm, llm2vae and the timestep MLP start random; the position tables are sin-cos.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from modeling.bagel.config import AutoEncoderArgs, BagelArgs, BagelConfig, llm_config_from_dict, vit_config_from_dict
from modeling.bagel.loader import build_bagel
from modeling.bagel.model import SpecialTokens

LLM_PREFIX, VIT_PREFIX = "language_model.", "vit_model.vision_model."
# Modules of a Qwen2 decoder layer that the generation expert copies (name -> name with the _moe_gen suffix).
_GEN_COPIES = {".self_attn.q_proj.": ".self_attn.q_proj_moe_gen.", ".self_attn.k_proj.": ".self_attn.k_proj_moe_gen.",
               ".self_attn.v_proj.": ".self_attn.v_proj_moe_gen.", ".self_attn.o_proj.": ".self_attn.o_proj_moe_gen.",
               ".mlp.": ".mlp_moe_gen.", ".input_layernorm.": ".input_layernorm_moe_gen.",
               ".post_attention_layernorm.": ".post_attention_layernorm_moe_gen.", "model.norm.": "model.norm_moe_gen."}


@dataclass
class ComponentsConfig:
    llm_dir: str          # Qwen2.5 folder: config.json, *.safetensors, tokenizer files
    vit_dir: str          # SigLIP folder: config.json (vision or full SigLIP), *.safetensors
    ae_path: str          # FLUX ae.safetensors
    ae_config: str | None = None  # JSON of AutoEncoderArgs fields (None: the FLUX AE)


def read_safetensors_folder(folder: str) -> dict[str, torch.Tensor]:
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no *.safetensors weights; download the model folder first")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    return state


def _json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; point the config at the model folder that contains it")
    return json.loads(path.read_text())


def components_config(components: ComponentsConfig, bagel: BagelArgs | None = None) -> BagelConfig:
    """BAGEL config from the two folders: the ViT table covers ``vit_max_num_patch_per_side`` patches per side."""
    bagel = bagel or BagelArgs()
    vit = _json(Path(components.vit_dir) / "config.json")
    vit = vit.get("vision_config", vit)
    vit["image_size"] = bagel.vit_max_num_patch_per_side * vit["patch_size"]
    ae = AutoEncoderArgs(**{k: v for k, v in _json(Path(components.ae_config)).items() if not k.startswith("_")}) \
        if components.ae_config else AutoEncoderArgs()
    return BagelConfig(llm_config_from_dict(_json(Path(components.llm_dir) / "config.json")),
                       vit_config_from_dict(vit), bagel, ae)


def _vit_weights(raw: dict[str, torch.Tensor], config: BagelConfig) -> dict[str, torch.Tensor]:
    vit, side = config.vit, config.bagel.vit_max_num_patch_per_side
    out = {}
    for key, value in raw.items():
        key = key.removeprefix("vision_model.")
        if key.startswith(("text_model.", "head.", "logit_")):
            continue
        if key.startswith("encoder.layers.") and int(key.split(".")[2]) >= vit.num_hidden_layers:
            continue  # layers after the selected one
        if key == "embeddings.patch_embedding.weight":  # conv [out, c, p, p] -> linear [out, p*p*c]
            value = value.permute(0, 2, 3, 1).reshape(value.shape[0], -1)
        if key == "embeddings.position_embedding.weight" and value.shape[0] != side * side:
            old = int(round(value.shape[0] ** 0.5))
            grid = value.T.reshape(1, -1, old, old).float()
            value = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
            value = value.reshape(-1, side * side).T
        out[VIT_PREFIX + key] = value
    return out


def _llm_weights(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if "lm_head.weight" not in raw:  # small Qwen2.5 models tie the head to the embedding; BAGEL unties it
        raw = {**raw, "lm_head.weight": raw["model.embed_tokens.weight"]}
    out = {}
    for key, value in raw.items():
        out[LLM_PREFIX + key] = value
        for und, gen in _GEN_COPIES.items():
            if und in key:
                out[LLM_PREFIX + key.replace(und, gen)] = value.clone()
    return out


def components_state(components: ComponentsConfig, config: BagelConfig, special: SpecialTokens,
                     seed: int) -> dict[str, torch.Tensor]:
    """Full float32 state dict: pretrained LLM (both experts) and ViT over a seeded random init of the rest."""
    state = build_bagel(config, "cpu", special_tokens=special, init_seed=seed).state_dict()
    pretrained = {**_llm_weights(read_safetensors_folder(components.llm_dir)),
                  **_vit_weights(read_safetensors_folder(components.vit_dir), config)}
    unknown = sorted(set(pretrained) - set(state))
    if unknown:
        raise KeyError(f"{len(unknown)} pretrained weight(s) have no place in BAGEL, e.g. {unknown[:4]}; are "
                       f"{components.llm_dir} a Qwen2 and {components.vit_dir} a SigLIP checkpoint?")
    for key, value in pretrained.items():
        if value.shape != state[key].shape:
            raise ValueError(f"{key}: pretrained shape {tuple(value.shape)} != BAGEL's {tuple(state[key].shape)}")
        state[key] = value.float()
    return state
