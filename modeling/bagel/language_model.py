"""Qwen2 Mixture-of-Transformers language model over packed sequences, with an optional key/value cache."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm, Qwen2RotaryEmbedding

from .attention import AttentionLayout
from .kv_cache import LayerKV
from .mot_layer import ExpertRouting, Qwen2MoTDecoderLayer


class Qwen2MoTModel(nn.Module):
    def __init__(self, config: Qwen2Config, attn_backend: str = "auto"):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Qwen2MoTDecoderLayer(config, attn_backend) for _ in range(config.num_hidden_layers))
        self.norm = Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.norm_moe_gen = Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = Qwen2RotaryEmbedding(config)

    def forward(
        self,
        x: torch.Tensor,  # [Lq, hidden] packed input embeddings
        position_ids: torch.Tensor,  # [Lq] RoPE positions
        layout: AttentionLayout,
        gen_indexes: torch.Tensor | None = None,  # [L_gen] positions routed to the generation expert
        past: list[LayerKV] | None = None,  # per layer: stores holding the cached keys plus free slots
        insert_idx: torch.Tensor | None = None,  # [Lq] slots of the new keys in each buffer
        layers: Sequence[nn.Module] | None = None,  # stand-ins for self.layers with the same weights (compiled)
    ) -> torch.Tensor:
        """-> final-normed hidden states [Lq, hidden]; with ``past`` the block's keys/values are stored in place."""
        routing = ExpertRouting.from_gen_indexes(x.shape[0], gen_indexes)
        cos, sin = self.rotary_emb(x, position_ids[None])
        rope = (cos[0], sin[0])
        for i, layer in enumerate(self.layers if layers is None else layers):
            buffer = None if past is None else (past[i].keys, past[i].values)
            x = layer(x, rope, routing, layout, buffer, insert_idx)
        return routing.apply(x, self.norm, self.norm_moe_gen)


class Qwen2MoTForCausalLM(nn.Module):
    def __init__(self, config: Qwen2Config, attn_backend: str = "auto"):
        super().__init__()
        self.model = Qwen2MoTModel(config, attn_backend)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
