"""Official checkpoint keys <-> this repository's modules.

The module tree of ``Bagel`` mirrors the official key names one to one (``language_model.model.layers.N.…``,
``vit_model.vision_model.…``), so loading and exporting need no renaming; this module holds the strict check that
both directions go through, with an error that lists what is missing, unexpected or of the wrong shape.
The autoencoder's FLUX names are mapped to diffusers' in ``modeling/vae/autoencoder.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .config import CheckpointError

_SHOW = 8


def _listing(title: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW]) + (f", ... ({len(items) - _SHOW} more)" if len(items) > _SHOW else "")
    return f"{len(items)} {title}: {shown}"


def check_state_dict(
    state: Mapping[str, torch.Tensor | tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], file_name: str
) -> None:
    """Strict key and shape match; raises ``CheckpointError`` naming the file, the differences and the fix."""
    shape = lambda v: tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v)  # noqa: E731
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(f"{k} {shape(state[k])} != {tuple(expected[k])}" for k in set(state) & set(expected)
                   if shape(state[k]) != tuple(expected[k]))
    if missing or unexpected or wrong:
        parts = [_listing(t, items) for t, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                                     ("keys with the wrong shape", wrong)) if items]
        raise CheckpointError(
            f"{file_name} does not match the model built from the config files: " + "; ".join(parts) +
            ". Check that llm_config.json / vit_config.json (and the sidecars) belong to this checkpoint, "
            "or re-download the folder with scripts/download_ckpt.sh.")


def model_shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Official key -> shape of every tensor the model saves (its state dict, which uses official names)."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
