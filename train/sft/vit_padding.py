"""Keep every rank running the ViT blocks, even on a batch without ViT tokens.

With FSDP every rank must run every sharded block (each forward and backward issues collectives). The model skips
its ViT when a batch holds no ViT tokens (possible after condition dropout), so on more than one rank such a batch
gets a 3-token padding sample: [start_of_image, one blank patch, end_of_image], in its own attention document and
without loss tokens. It changes no loss; the ViT receives exactly zero gradient from it.
"""

from __future__ import annotations

from typing import Any

import torch


def pad_missing_vit(batch: dict[str, Any], patch_dim: int, start_of_image: int, end_of_image: int) -> dict[str, Any]:
    if batch["packed_vit_token_indexes"].numel():
        return batch
    out = dict(batch)
    start, sample = int(batch["sequence_length"]), len(batch["sample_lens"])
    cat = lambda key, values: torch.cat([batch[key], torch.tensor(values, dtype=batch[key].dtype)])  # noqa: E731
    out["sequence_length"] = start + 3
    out["sample_lens"] = list(batch["sample_lens"]) + [3]
    out["split_lens"] = list(batch["split_lens"]) + [3]
    out["attn_modes"] = list(batch["attn_modes"]) + ["full"]
    out["packed_text_ids"] = cat("packed_text_ids", [start_of_image, end_of_image])
    out["packed_text_indexes"] = cat("packed_text_indexes", [start, start + 2])
    out["packed_position_ids"] = cat("packed_position_ids", [0, 0, 0])
    out["packed_vit_tokens"] = torch.zeros(1, patch_dim, dtype=batch["packed_vit_tokens"].dtype)
    out["packed_vit_position_ids"] = torch.zeros(1, dtype=torch.long)
    out["packed_vit_token_indexes"] = torch.tensor([start + 1])
    out["vit_token_seqlens"] = torch.tensor([1])
    out["packed_sample_ids"] = cat("packed_sample_ids", [sample] * 3)
    out["dataset_name"] = list(batch["dataset_name"]) + ["vit_padding"]
    return out
