"""SigLIP NaViT: the SigLIP encoder of ``transformers`` run on packed, variable-size images.

Patches of all images are concatenated into one sequence; attention is full inside an image and never across
images (the packed-attention backends do that through an ``AttentionInterface`` entry). The patch embedding is a
Linear over flattened 14x14x3 patches (features ordered row-in-patch, col-in-patch, channel), as the official
checkpoint stores it; positions come from a learned table indexed by ``row * max_side + col``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AttentionInterface, SiglipVisionConfig
from transformers.models.siglip.modeling_siglip import SiglipEncoder

from modeling.bagel.attention import AttentionLayout, packed_attention

ATTN_IMPLEMENTATION = "bagel_packed"


@dataclass
class PackedImagesMask:
    """Passed through transformers' ``attention_mask`` argument to reach the packed attention function."""

    layout: AttentionLayout
    backend: str


def _packed_attention_interface(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    # transformers hands [1, H, L, D] tensors; the packed backends take [L, H, D].
    out = packed_attention(query[0].transpose(0, 1), key[0].transpose(0, 1), value[0].transpose(0, 1),
                           attention_mask.layout, scaling, attention_mask.backend)
    return out[None], None


AttentionInterface.register(ATTN_IMPLEMENTATION, _packed_attention_interface)


class SiglipNaViTEmbeddings(nn.Module):
    def __init__(self, config: SiglipVisionConfig):
        super().__init__()
        patch_dim = config.num_channels * config.patch_size ** 2
        self.patch_embedding = nn.Linear(patch_dim, config.hidden_size)
        num_positions = (config.image_size // config.patch_size) ** 2
        self.position_embedding = nn.Embedding(num_positions, config.hidden_size)

    def forward(self, packed_pixel_values: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        patches = packed_pixel_values.to(self.patch_embedding.weight.dtype)
        return self.patch_embedding(patches) + self.position_embedding(position_ids)


class SiglipNaViTTransformer(nn.Module):
    def __init__(self, config: SiglipVisionConfig):
        super().__init__()
        config._attn_implementation = ATTN_IMPLEMENTATION
        self.embeddings = SiglipNaViTEmbeddings(config)
        self.encoder = SiglipEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class SiglipNaViT(nn.Module):
    def __init__(self, config: SiglipVisionConfig, attn_backend: str = "auto"):
        super().__init__()
        self.attn_backend = attn_backend
        self.vision_model = SiglipNaViTTransformer(config)

    def forward(
        self,
        packed_pixel_values: torch.Tensor,  # [N, 3 * patch^2]
        packed_position_ids: torch.Tensor,  # [N] row * max_side + col
        token_seqlens: list[int],  # patches per image
    ) -> torch.Tensor:
        """-> [N, vit_hidden] last hidden state after the post LayerNorm."""
        layout = AttentionLayout.from_splits(token_seqlens, token_seqlens, ["full"] * len(token_seqlens),
                                             packed_pixel_values.device)
        x = self.vision_model.embeddings(packed_pixel_values, packed_position_ids)
        mask = PackedImagesMask(layout, self.attn_backend)
        x = self.vision_model.encoder(inputs_embeds=x[None], attention_mask=mask).last_hidden_state[0]
        return self.vision_model.post_layernorm(x)
