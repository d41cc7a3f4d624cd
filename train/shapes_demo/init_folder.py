"""The initial BAGEL folder of the demo model: random weights at a small configuration, the world tokenizer and the
trained autoencoder, written in the official layout so that SFT starts from it with ``model.model_dir`` and all of
the SFT machinery (mix data, export, validation) is reused unchanged.

The model configuration is a JSON file (``configs/shapes_demo/model.json``) with ``llm`` / ``vit`` / ``bagel`` /
``ae`` sections; the LLM's vocabulary size is the tokenizer's (rounded up to a multiple of 64) and the ViT section's
``num_hidden_layers`` counts as in the official ``vit_config.json`` (one layer more than is built).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors.torch import load_file

from modeling.bagel.config import (AutoEncoderArgs, BagelArgs, BagelConfig, llm_config_from_dict,
                                   vit_config_from_dict)
from modeling.bagel.loader import BagelBundle, build_bagel, export_bagel, load_tokenizer
from modeling.vae.autoencoder import FluxAutoencoder

VOCAB_MULTIPLE = 64


def _section(spec: dict, name: str, path: str) -> dict:
    if not isinstance(spec.get(name), dict):
        raise ValueError(f"{path}: missing the '{name}' section (a mapping); see configs/shapes_demo/model.json")
    return spec[name]


def demo_config(model_json: str | Path, tokenizer_dir: str | Path, ae_args: AutoEncoderArgs) -> BagelConfig:
    """The BagelConfig of the demo model: the JSON's sizes, the tokenizer's vocabulary and ids, the trained AE."""
    spec = json.loads(Path(model_json).read_text())
    tokenizer, special = load_tokenizer(tokenizer_dir)
    llm = dict(_section(spec, "llm", str(model_json)))
    llm.update(vocab_size=math.ceil(len(tokenizer) / VOCAB_MULTIPLE) * VOCAB_MULTIPLE,
               bos_token_id=special.bos, eos_token_id=special.eos, tie_word_embeddings=False,
               max_window_layers=llm["num_hidden_layers"])
    bagel_fields = {f.name for f in fields(BagelArgs)}
    bagel = BagelArgs(**{k: v for k, v in _section(spec, "bagel", str(model_json)).items() if k in bagel_fields})
    return BagelConfig(llm_config_from_dict(llm), vit_config_from_dict(dict(_section(spec, "vit", str(model_json)))),
                       bagel, ae_args)


def ae_args_from_spec(model_json: str | Path) -> AutoEncoderArgs:
    """The autoencoder's architecture from the model JSON's ``ae`` section (before training sets its statistics)."""
    spec = _section(json.loads(Path(model_json).read_text()), "ae", str(model_json))
    known = {f.name for f in fields(AutoEncoderArgs)}
    return AutoEncoderArgs(**{k: v for k, v in spec.items() if k in known})


def load_trained_autoencoder(ae_dir: str | Path) -> FluxAutoencoder:
    """``ae_config.json`` + ``ae.safetensors`` as written by ``train.shapes_demo.autoencoder.save_autoencoder``."""
    ae_dir = Path(ae_dir)
    known = {f.name for f in fields(AutoEncoderArgs)}
    values = json.loads((ae_dir / "ae_config.json").read_text())
    vae = FluxAutoencoder(AutoEncoderArgs(**{k: v for k, v in values.items() if k in known}))
    vae.load_official_state_dict(load_file(str(ae_dir / "ae.safetensors")))
    return vae.eval()


def write_init_folder(out_dir: str | Path, model_json: str | Path, tokenizer_dir: str | Path, ae_dir: str | Path,
                      seed: int = 0) -> Path:
    """Write the initial folder (float32 random weights, seeded) and return its path."""
    vae = load_trained_autoencoder(ae_dir)
    config = demo_config(model_json, tokenizer_dir, vae.args)
    tokenizer, special = load_tokenizer(tokenizer_dir)
    model = build_bagel(config, "cpu", dtype=torch.float32, special_tokens=special, init_seed=seed)
    return export_bagel(BagelBundle(model, vae, tokenizer, special, config), out_dir)


def parameter_counts(config: BagelConfig) -> dict[str, int]:
    """Parameters of the LLM (both experts), the ViT + connector, and the rest (latent embeddings, heads)."""
    model = build_bagel(config, "meta")
    counts = {"llm": 0, "vit": 0, "other": 0}
    for name, p in model.named_parameters():
        group = "llm" if name.startswith("language_model") else "vit" if name.startswith(("vit", "connector")) \
            else "other"
        counts[group] += p.numel()
    counts["total"] = sum(counts.values())
    return counts


def describe_config(config: BagelConfig) -> dict:
    return {"llm": {k: getattr(config.llm, k) for k in ("vocab_size", "hidden_size", "intermediate_size",
                                                         "num_hidden_layers", "num_attention_heads",
                                                         "num_key_value_heads")},
            "vit_layers_built": config.vit.num_hidden_layers, "bagel": asdict(config.bagel), "ae": asdict(config.ae),
            "parameters": parameter_counts(config)}
