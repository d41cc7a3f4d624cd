"""Latent <-> token layout: 2x2 patches of the autoencoder latent become 64-dim tokens."""

from __future__ import annotations

import torch


def patchify_latent(latent: torch.Tensor, patch: int) -> torch.Tensor:
    """[C, p*h, p*w] -> [h*w, p*p*C]; tokens row-major, features ordered (row-in-patch, col-in-patch, channel)."""
    c, hp, wp = latent.shape
    h, w = hp // patch, wp // patch
    x = latent.reshape(c, h, patch, w, patch).permute(1, 3, 2, 4, 0)
    return x.reshape(h * w, patch * patch * c)


def unpatchify_latent(tokens: torch.Tensor, h: int, w: int, patch: int) -> torch.Tensor:
    """[h*w, p*p*C] -> [C, p*h, p*w] (inverse of ``patchify_latent``)."""
    c = tokens.shape[1] // (patch * patch)
    x = tokens.reshape(h, w, patch, patch, c).permute(4, 0, 2, 1, 3)
    return x.reshape(c, h * patch, w * patch)


def grid_position_ids(h: int, w: int, max_side: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[h*w] flattened ids ``row * max_side + col`` (positions do not depend on the image size)."""
    if h > max_side or w > max_side:
        raise ValueError(f"a {h}x{w} token grid exceeds the position table side {max_side}; use a smaller image")
    rows = torch.arange(h, device=device)[:, None]
    cols = torch.arange(w, device=device)[None, :]
    return (rows * max_side + cols).reshape(-1)

