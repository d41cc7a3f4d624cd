"""Classifier-free guidance over text and image conditions, with the official renormalisation variants."""

from __future__ import annotations

import torch

RENORM_TYPES = ("global", "channel", "text_channel")


def _renorm(v: torch.Tensor, reference: torch.Tensor, renorm_min: float, per_token: bool) -> torch.Tensor:
    """Scale v so its norm does not exceed the reference's (norms per token over channels, or over the whole tensor)."""
    if per_token:
        ratio = reference.norm(dim=-1, keepdim=True) / (v.norm(dim=-1, keepdim=True) + 1e-8)
    else:
        ratio = reference.norm() / (v.norm() + 1e-8)
    return v * ratio.clamp(min=renorm_min, max=1.0)


def guided_velocity(
    v_cond: torch.Tensor,  # [N, C] full context
    v_text_uncond: torch.Tensor | None,  # [N, C] context without the last text prompt
    v_img_uncond: torch.Tensor | None,  # [N, C] context without the image
    text_scale: float,
    img_scale: float,
    renorm_type: str = "global",
    renorm_min: float = 0.0,
) -> torch.Tensor:
    """Combine the branch velocities. No guidance at all unless ``text_scale > 1`` (as the original)."""
    if renorm_type not in RENORM_TYPES:
        raise ValueError(f"unknown cfg_renorm_type {renorm_type!r}; choose one of {RENORM_TYPES}")
    if text_scale <= 1.0:
        return v_cond
    v = v_text_uncond + text_scale * (v_cond - v_text_uncond)
    use_img = img_scale > 1.0
    if renorm_type == "text_channel":
        v = _renorm(v, v_cond, renorm_min, per_token=True)
        return v_img_uncond + img_scale * (v - v_img_uncond) if use_img else v
    if use_img:
        v = v_img_uncond + img_scale * (v - v_img_uncond)
    return _renorm(v, v_cond, renorm_min, per_token=renorm_type == "channel")
