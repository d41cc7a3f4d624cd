"""Configuration of a BAGEL checkpoint folder: LLM (Qwen2), ViT (SigLIP), autoencoder and the wrapper values.

The official folder has ``llm_config.json`` and ``vit_config.json``; the wrapper values (``BagelArgs``) and the
autoencoder parameters (``AutoEncoderArgs``) are hard-coded by the original app, and may be given by the optional
sidecars ``bagel_config.json`` / ``ae_config.json``. After reading, the original loader forces
``qk_norm=True, tie_word_embeddings=False`` on the LLM and ``rope=False`` on the ViT, and builds one ViT layer fewer
than the file says (the last layer is dropped: features come from the second-to-last layer).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from transformers import Qwen2Config, SiglipVisionConfig


class CheckpointError(RuntimeError):
    """A checkpoint folder that cannot be loaded; the message names the file and the fix."""


@dataclass
class BagelArgs:
    vit_max_num_patch_per_side: int = 70
    latent_patch_size: int = 2
    max_latent_size: int = 64
    connector_act: str = "gelu_pytorch_tanh"
    interpolate_pos: bool = False
    timestep_shift: float = 1.0  # training-time shift of the sampled timesteps; inference passes its own


@dataclass
class AutoEncoderArgs:
    resolution: int = 256
    in_channels: int = 3
    downsample: int = 8
    ch: int = 128
    out_ch: int = 3
    ch_mult: list[int] = field(default_factory=lambda: [1, 2, 4, 4])
    num_res_blocks: int = 2
    z_channels: int = 16
    scale_factor: float = 0.3611
    shift_factor: float = 0.1159


@dataclass
class BagelConfig:
    llm: Qwen2Config
    vit: SiglipVisionConfig  # num_hidden_layers = layers actually built
    bagel: BagelArgs
    ae: AutoEncoderArgs

    @property
    def latent_channels(self) -> int:
        return self.ae.z_channels

    @property
    def patch_latent_dim(self) -> int:
        return self.bagel.latent_patch_size ** 2 * self.ae.z_channels


_LLM_INT_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                   "num_key_value_heads")
_VIT_INT_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "patch_size",
                   "image_size", "num_channels")


def _read_json(path: Path, required: bool) -> dict | None:
    if not path.exists():
        if required:
            raise CheckpointError(f"{path} is missing. A BAGEL folder needs llm_config.json, vit_config.json, "
                                  f"ema.safetensors, ae.safetensors and the tokenizer files; download it with "
                                  f"scripts/download_ckpt.sh or pass the right --model-path.")
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); re-download the file.") from e


def _check_types(values: dict, names: tuple[str, ...], path: Path, kind: type, optional: bool = False) -> None:
    for name in names:
        if name not in values:
            if optional:
                continue
            raise CheckpointError(f"{path} has no field '{name}'; add it (see the official config) or re-download.")
        v = values[name]
        if isinstance(v, bool) or not isinstance(v, kind if kind is not float else (int, float)):
            raise CheckpointError(f"{path}: field '{name}' is {v!r} ({type(v).__name__}), expected {kind.__name__}; "
                                  f"fix the value in the file.")


def _dataclass_from(cls, values: dict | None, path: Path):
    if values is None:
        return cls()
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for name, v in values.items():
        if name not in known:
            continue
        default = getattr(cls(), name)
        expected = type(default)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) if expected is float else isinstance(v, expected)
        if not ok:
            raise CheckpointError(f"{path}: field '{name}' is {v!r} ({type(v).__name__}), expected "
                                  f"{expected.__name__}; fix the value in the file.")
        kwargs[name] = v
    return cls(**kwargs)


def llm_config_from_dict(values: dict) -> Qwen2Config:
    values = {k: v for k, v in values.items() if not k.startswith("_")}
    values.update(qk_norm=True, tie_word_embeddings=False, layer_module="Qwen2MoTDecoderLayer")
    return Qwen2Config(**values)


def vit_config_from_dict(values: dict, drop_last_layer: bool = True) -> SiglipVisionConfig:
    values = {k: v for k, v in values.items() if not k.startswith("_")}
    if drop_last_layer:
        values["num_hidden_layers"] = values["num_hidden_layers"] - 1
    values["rope"] = False
    return SiglipVisionConfig(**values)


def load_config(model_dir: str | Path) -> BagelConfig:
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise CheckpointError(f"model folder {model_dir} does not exist; pass the folder that holds llm_config.json "
                              f"(download it with scripts/download_ckpt.sh).")
    llm_path, vit_path = model_dir / "llm_config.json", model_dir / "vit_config.json"
    llm_values, vit_values = _read_json(llm_path, True), _read_json(vit_path, True)
    _check_types(llm_values, _LLM_INT_FIELDS, llm_path, int)
    _check_types(llm_values, ("rms_norm_eps", "rope_theta"), llm_path, float, optional=True)
    _check_types(vit_values, _VIT_INT_FIELDS, vit_path, int)
    bagel = _dataclass_from(BagelArgs, _read_json(model_dir / "bagel_config.json", False), model_dir / "bagel_config.json")
    ae = _dataclass_from(AutoEncoderArgs, _read_json(model_dir / "ae_config.json", False), model_dir / "ae_config.json")
    return BagelConfig(llm_config_from_dict(llm_values), vit_config_from_dict(vit_values), bagel, ae)


def config_to_files(config: BagelConfig) -> dict[str, dict]:
    """The JSON files of a folder in the official layout (plus the sidecars), inverse of ``load_config``."""
    llm = config.llm.to_dict()
    vit = config.vit.to_dict()
    vit["num_hidden_layers"] = config.vit.num_hidden_layers + 1
    for d in (llm, vit):
        for key in ("transformers_version", "_name_or_path", "rope", "layer_module", "qk_norm"):
            d.pop(key, None)
    llm.update(qk_norm=True, layer_module="Qwen2MoTDecoderLayer")
    return {"llm_config.json": llm, "vit_config.json": vit, "bagel_config.json": asdict(config.bagel),
            "ae_config.json": asdict(config.ae)}


def config_from_reference_json(path: str | Path) -> BagelConfig:
    """The full-size config from ``bagel-7b-mot.configs.json`` (the key-list fixture's companion)."""
    d = json.loads(Path(path).read_text())
    bagel = {k: v for k, v in d["bagel_config (app.py)"].items() if k in {f.name for f in fields(BagelArgs)}}
    return BagelConfig(llm_config_from_dict(d["llm_config.json"]), vit_config_from_dict(d["vit_config.json"]),
                       BagelArgs(**bagel), AutoEncoderArgs(**d["ae_params (load_ae)"]))
