"""Build BAGEL at any size, load the official folder layout strictly, and export back to it.

Folder layout (official BAGEL-7B-MoT): ``llm_config.json``, ``vit_config.json``, ``ema.safetensors``,
``ae.safetensors``, tokenizer files; optional sidecars ``bagel_config.json`` and ``ae_config.json`` (see
``config.py``). Any mismatch raises ``CheckpointError`` with the file, the differences and the fix.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm, Qwen2RotaryEmbedding

from modeling.vae.autoencoder import FluxAutoencoder

from .embeddings import PositionEmbedding
from .config import BagelConfig, CheckpointError, config_to_files, load_config
from .model import QWEN25_SPECIAL_TOKENS, Bagel, SpecialTokens
from .state_dict_adapter import check_state_dict, model_shapes

BAGEL_TOKENS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")  # one of them must exist


@dataclass
class BagelBundle:
    model: Bagel
    vae: FluxAutoencoder
    tokenizer: PreTrainedTokenizerBase | None
    special_tokens: SpecialTokens
    config: BagelConfig


def build_bagel(config: BagelConfig, device: torch.device | str = "meta", dtype: torch.dtype = torch.float32,
                special_tokens: SpecialTokens = QWEN25_SPECIAL_TOKENS, attn_backend: str = "auto",
                init_seed: int | None = 0) -> Bagel:
    """The model with random weights (``init_seed``), or uninitialised on ``device='meta'`` (shapes only)."""
    with torch.device("meta"):
        model = Bagel(config, special_tokens, attn_backend)
    if str(device) == "meta":
        return model
    model = model.to(dtype).to_empty(device=device)  # allocated once, in the final dtype
    reset_non_persistent_buffers(model)  # after the cast: RoPE frequencies stay float32, as after load_bagel
    if init_seed is not None:
        initialize_weights(model, init_seed)
    return model


def reset_non_persistent_buffers(model: Bagel) -> None:
    """Buffers that are not in the checkpoint (RoPE frequencies) are recomputed after ``to_empty``."""
    lm = model.language_model.model
    device = lm.embed_tokens.weight.device
    with torch.device(device):
        lm.rotary_emb = Qwen2RotaryEmbedding(model.config.llm)


@torch.no_grad()
def initialize_weights(model: Bagel, seed: int, std: float = 0.02) -> None:
    """Normal(0, std) matrices, zero biases, unit norms, sin-cos position tables; deterministic by seed."""
    device = model.vae2llm.weight.device
    gen = torch.Generator(device=device).manual_seed(seed)  # on the model's device: a 7B init stays fast
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            module.weight.normal_(0.0, std, generator=gen)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        elif isinstance(module, (torch.nn.LayerNorm, Qwen2RMSNorm)):
            module.weight.fill_(1.0)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        elif isinstance(module, PositionEmbedding):
            module.reset_parameters()


def load_tokenizer(model_dir: str | Path) -> tuple[PreTrainedTokenizerBase, SpecialTokens]:
    """The tokenizer with BAGEL's special tokens (added if missing, as the original does) and their ids."""
    model_dir = Path(model_dir)
    if not any((model_dir / f).exists() for f in TOKENIZER_FILES):
        raise CheckpointError(f"{model_dir} has no tokenizer (tokenizer.json or vocab.json + merges.txt); copy the "
                              f"tokenizer files of the checkpoint into the folder or re-download it.")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError, json.JSONDecodeError) as e:
        raise CheckpointError(f"the tokenizer files in {model_dir} cannot be read ({e}); re-download them.") from e
    vocab = tokenizer.get_vocab()
    missing = [t for t in BAGEL_TOKENS if t not in vocab]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    ids = [tokenizer.convert_tokens_to_ids(t) for t in BAGEL_TOKENS]
    return tokenizer, SpecialTokens(*ids)


def _load_safetensors(path: Path, device: torch.device | str) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise CheckpointError(f"{path} is missing; the folder needs ema.safetensors and ae.safetensors. Download "
                              f"the checkpoint with scripts/download_ckpt.sh or point --model-path at the right folder.")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} cannot be read as safetensors ({e}); the file is damaged, re-download it.") from e


def load_bagel(model_dir: str | Path, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
               attn_backend: str = "auto", vae_dtype: torch.dtype | None = None) -> BagelBundle:
    """Load an official-layout folder with strict key and shape matching."""
    model_dir = Path(model_dir)
    config = load_config(model_dir)
    tokenizer, special = load_tokenizer(model_dir)
    if config.llm.vocab_size < len(tokenizer):
        raise CheckpointError(f"llm_config.json vocab_size {config.llm.vocab_size} is smaller than the tokenizer "
                              f"({len(tokenizer)} tokens); the tokenizer files do not belong to this checkpoint.")
    model = build_bagel(config, "meta", special_tokens=special, attn_backend=attn_backend)
    state = _load_safetensors(model_dir / "ema.safetensors", device)
    check_state_dict(state, model_shapes(model), str(model_dir / "ema.safetensors"))
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    reset_non_persistent_buffers(model)
    model.eval()
    vae = FluxAutoencoder(config.ae)
    vae.load_official_state_dict(_load_safetensors(model_dir / "ae.safetensors", "cpu"))
    vae = vae.to(device=device, dtype=vae_dtype or dtype).eval()
    return BagelBundle(model, vae, tokenizer, special, config)


def export_bagel(bundle: BagelBundle, out_dir: str | Path, state_dict: dict[str, torch.Tensor] | None = None,
                 dtype: torch.dtype | None = None) -> Path:
    """Write the official folder layout (atomically: a temporary folder renamed into place).

    ``state_dict`` (e.g. EMA weights gathered by the trainer) replaces the model's own weights when given."""
    out_dir = Path(out_dir)
    state = state_dict if state_dict is not None else bundle.model.state_dict()
    check_state_dict(state, model_shapes(bundle.model), "the exported state dict")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # A plain mkdir (umask applies), not tempfile.mkdtemp: its 0700 survives the rename and would hide the
    # exported weights from teammates on a shared cluster.
    tmp = out_dir.parent / f".{out_dir.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        for name, values in config_to_files(bundle.config).items():
            (tmp / name).write_text(json.dumps(values, indent=2, default=str))
        cast = (lambda t: t.to(dtype)) if dtype is not None else (lambda t: t)
        save_file({k: cast(v.detach()).contiguous().cpu() for k, v in state.items()}, str(tmp / "ema.safetensors"))
        save_file({k: v.contiguous().cpu() for k, v in bundle.vae.official_state_dict().items()},
                  str(tmp / "ae.safetensors"))
        for name in ("ema.safetensors", "ae.safetensors"):
            # safetensors 0.8 writes through an owner-only (0600) temporary file (safetensors issue #782): give the
            # weights the mode the umask gave the plainly written config files.
            shutil.copymode(tmp / "llm_config.json", tmp / name)
        if bundle.tokenizer is not None:
            bundle.tokenizer.save_pretrained(str(tmp))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
