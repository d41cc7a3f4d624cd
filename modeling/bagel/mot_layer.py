"""The Mixture-of-Transformers decoder layer: two Qwen2 experts sharing one attention over the packed sequence.

Understanding tokens (text, ViT) run through the plain Qwen2 weights; generation tokens (VAE latents) through the
``*_moe_gen`` copies. Both kinds' keys and values meet in a single attention call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2MLP, Qwen2RMSNorm, apply_rotary_pos_emb

from .attention import AttentionLayout, packed_attention


SLIVER_RATIO = 32  # a kind with at most 1/32 of the rows is recomputed over the other expert's output


@dataclass
class ExpertRouting:
    """Which packed positions go to which expert; ``None`` means no token of that kind (skips the gather)."""

    und_idx: torch.Tensor | None  # [L_und] int64
    gen_idx: torch.Tensor | None  # [L_gen] int64

    @classmethod
    def from_gen_indexes(cls, length: int, gen_idx: torch.Tensor | None) -> "ExpertRouting":
        if gen_idx is None or gen_idx.numel() == 0:
            return cls(None, None)
        if gen_idx.numel() == length:
            return cls(torch.empty(0, dtype=torch.long, device=gen_idx.device), gen_idx)
        is_gen = torch.zeros(length, dtype=torch.bool, device=gen_idx.device)
        is_gen[gen_idx] = True
        return cls(torch.nonzero(~is_gen).squeeze(1), gen_idx)

    def apply(self, x: torch.Tensor, und_fn: Callable, gen_fn: Callable) -> torch.Tensor:
        """[L, ...] -> [L, ...']: und_fn on understanding rows, gen_fn on generation rows.

        When one kind is a sliver (a denoising block is thousands of latent tokens between two marker tokens), the
        majority expert runs on the whole block and only the sliver is recomputed and written over it: every function
        here acts row by row, and this avoids gathering and scattering the large share for a few wasted rows."""
        if self.gen_idx is None:
            return und_fn(x)
        n_und, n_gen = self.und_idx.numel(), self.gen_idx.numel()
        if n_und == 0:
            return gen_fn(x)
        if min(n_und, n_gen) * SLIVER_RATIO <= x.shape[0]:
            major_fn, minor_fn, minor_idx = (gen_fn, und_fn, self.und_idx) if n_gen > n_und else (und_fn, gen_fn,
                                                                                                   self.gen_idx)
            out = major_fn(x)
            out[minor_idx] = minor_fn(x[minor_idx]).to(out.dtype)
            return out
        y_und, y_gen = und_fn(x[self.und_idx]), gen_fn(x[self.gen_idx])
        out = y_und.new_empty((x.shape[0], *y_und.shape[1:]))
        out[self.und_idx] = y_und
        out[self.gen_idx] = y_gen
        return out


class MoTAttention(nn.Module):
    def __init__(self, config: Qwen2Config, attn_backend: str = "auto"):
        super().__init__()
        hidden, self.num_heads, self.num_kv_heads = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
        self.head_dim = hidden // self.num_heads
        self.scale = self.head_dim ** -0.5
        self.attn_backend = attn_backend
        for suffix in ("", "_moe_gen"):
            setattr(self, f"q_proj{suffix}", nn.Linear(hidden, self.num_heads * self.head_dim, bias=True))
            setattr(self, f"k_proj{suffix}", nn.Linear(hidden, self.num_kv_heads * self.head_dim, bias=True))
            setattr(self, f"v_proj{suffix}", nn.Linear(hidden, self.num_kv_heads * self.head_dim, bias=True))
            setattr(self, f"o_proj{suffix}", nn.Linear(self.num_heads * self.head_dim, hidden, bias=False))
            setattr(self, f"q_norm{suffix}", Qwen2RMSNorm(self.head_dim, eps=config.rms_norm_eps))
            setattr(self, f"k_norm{suffix}", Qwen2RMSNorm(self.head_dim, eps=config.rms_norm_eps))

    def _qkv(self, x: torch.Tensor, suffix: str) -> torch.Tensor:
        """[n, hidden] -> [n, Hq + 2*Hkv, head_dim] with q and k RMS-normed per head."""
        n = x.shape[0]
        q = getattr(self, f"q_norm{suffix}")(getattr(self, f"q_proj{suffix}")(x).view(n, self.num_heads, self.head_dim))
        k = getattr(self, f"k_norm{suffix}")(getattr(self, f"k_proj{suffix}")(x).view(n, self.num_kv_heads, self.head_dim))
        v = getattr(self, f"v_proj{suffix}")(x).view(n, self.num_kv_heads, self.head_dim)
        return torch.cat([q, k, v], dim=1)

    def forward(
        self,
        x: torch.Tensor,  # [Lq, hidden]
        rope: tuple[torch.Tensor, torch.Tensor],  # cos, sin [Lq, head_dim]
        routing: ExpertRouting,
        layout: AttentionLayout,
        kv_buffer: tuple[torch.Tensor, torch.Tensor] | None = None,  # [Lk, Hkv, D] with free slots for the new keys
        insert_idx: torch.Tensor | None = None,  # [Lq] slots of the new keys in kv_buffer
    ) -> torch.Tensor:
        qkv = routing.apply(x, lambda h: self._qkv(h, ""), lambda h: self._qkv(h, "_moe_gen"))
        q, k, v = qkv.split([self.num_heads, self.num_kv_heads, self.num_kv_heads], dim=1)
        cos, sin = rope
        q, k = apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)
        out = self._attend(q, k, v, layout, kv_buffer, insert_idx)  # [Lq, Hq, D]
        out = out.reshape(x.shape[0], self.num_heads * self.head_dim)
        return routing.apply(out, self.o_proj, self.o_proj_moe_gen)

    # Left out of torch.compile: the layout (document bounds, cache lengths) differs from prompt to prompt, and
    # compiling around it would recompile per prompt; everything before and after it is per-token work that fuses.
    @torch.compiler.disable
    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: AttentionLayout,
                kv_buffer: tuple[torch.Tensor, torch.Tensor] | None, insert_idx: torch.Tensor | None) -> torch.Tensor:
        if kv_buffer is not None:  # inference: write the block's keys into its cache slots (in place)
            kv_buffer[0].index_copy_(0, insert_idx, k.to(kv_buffer[0].dtype))
            kv_buffer[1].index_copy_(0, insert_idx, v.to(kv_buffer[1].dtype))
            k, v = kv_buffer
        return packed_attention(q, k, v, layout, self.scale, self.attn_backend)


class Qwen2MoTDecoderLayer(nn.Module):
    def __init__(self, config: Qwen2Config, attn_backend: str = "auto"):
        super().__init__()
        self.self_attn = MoTAttention(config, attn_backend)
        self.mlp = Qwen2MLP(config)
        self.mlp_moe_gen = Qwen2MLP(config)
        for suffix in ("", "_moe_gen"):
            setattr(self, f"input_layernorm{suffix}", Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps))
            setattr(self, f"post_attention_layernorm{suffix}", Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps))

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        routing: ExpertRouting,
        layout: AttentionLayout,
        kv_buffer: tuple[torch.Tensor, torch.Tensor] | None = None,
        insert_idx: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[Lq, hidden] -> [Lq, hidden]; with ``kv_buffer`` the block's keys/values are stored at ``insert_idx``."""
        h = routing.apply(x, self.input_layernorm, self.input_layernorm_moe_gen)
        h = self.self_attn(h, rope, routing, layout, kv_buffer, insert_idx)
        x = x + h
        h = routing.apply(x, self.post_attention_layernorm, self.post_attention_layernorm_moe_gen)
        return x + routing.apply(h, self.mlp, self.mlp_moe_gen)
