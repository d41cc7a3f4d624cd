"""A plain float64 attention reference for the attention tests (CPU and GPU)."""

from __future__ import annotations

import torch

from modeling.bagel.attention import AttentionLayout


def dense_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: AttentionLayout,
                              scale: float) -> torch.Tensor:
    """Plain softmax attention with the rule's mask, every query head over its KV head's keys (slow, obviously
    right), in float64 on the inputs' device: q [Lq, Hq, D], k/v [Lk, Hkv, D] -> [Lq, Hq, D]."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    scores = torch.einsum("qhd,khd->hqk", q.double(), k.double()) * scale
    mask = layout.visible(torch.arange(q.shape[0], device=q.device)[:, None],
                          torch.arange(k.shape[0], device=q.device)[None, :])
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.einsum("hqk,khd->qhd", scores.softmax(-1), v.double())
