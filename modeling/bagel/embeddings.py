"""Small embedding modules of the BAGEL wrapper: timestep, stored 2-D position tables, ViT->LLM connector."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from transformers.activations import ACT2FN


def timestep_frequency_embedding(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """t [N] in [0, 1] -> [N, dim]: cos half first, then sin (no x1000 scaling)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # [N] -> [N, hidden]
        freq = timestep_frequency_embedding(t, self.frequency_dim)
        return self.mlp(freq.to(self.mlp[0].weight.dtype))


def sincos_2d_table(embed_dim: int, grid_size: int) -> np.ndarray:
    """[grid_size^2, embed_dim] fixed 2-D sin-cos table (used only to initialise fresh models; loaders keep the
    stored values). Half the channels encode the column, half the row, each as [sin, cos] of MAE-style frequencies."""
    coords = np.arange(grid_size, dtype=np.float64)
    omega = 1.0 / 10000 ** (np.arange(embed_dim // 4, dtype=np.float64) / (embed_dim / 4.0))
    col, row = np.meshgrid(coords, coords)  # col varies fastest in the flattened index row * size + col

    def encode(pos: np.ndarray) -> np.ndarray:
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    return np.concatenate([encode(col), encode(row)], axis=1).astype(np.float32)


class PositionEmbedding(nn.Module):
    """A frozen [max_side^2, hidden] table indexed by flattened position id ``row * max_side + col``."""

    def __init__(self, max_side: int, hidden_size: int):
        super().__init__()
        self.max_side = max_side
        self.pos_embed = nn.Parameter(torch.zeros(max_side * max_side, hidden_size), requires_grad=False)

    def reset_parameters(self) -> None:
        table = sincos_2d_table(self.pos_embed.shape[1], self.max_side)
        with torch.no_grad():
            self.pos_embed.copy_(torch.from_numpy(table))

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return self.pos_embed[position_ids]


class MLPConnector(nn.Module):
    """ViT features -> LLM width: fc1 -> activation -> fc2."""

    def __init__(self, in_dim: int, out_dim: int, act: str):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, out_dim)
        self.act = ACT2FN[act]
        self.fc2 = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
