"""Training FLOPs of one packed batch and model FLOPs utilisation (MFU).

Counted: matmul FLOPs only, for the expert each token really uses, and attention over the (query, key) pairs each
token really attends (packed masks, not the padded square). Training = 3 x forward (backward = 2 x forward).
Per forward, with LLM width H, MLP width I, KV width Hkv = kv_heads * head_dim, L decoder layers:

    LLM token   : L * 2 * (2*H^2 + 2*H*Hkv + 3*H*I)      (q and o, k and v, gate/up/down)
    LLM pair    : L * 4 * H                               (q.k and attn.v)
    ViT token   : Lv * 2 * (4*Hv^2 + 2*Hv*Iv)             (q, k, v, o; fc1, fc2)
    ViT pair    : Lv * 4 * Hv                             (full attention inside each image)
    CE token    : 2 * H * vocab                           (lm_head only where CE is taken)

Embeddings, norms, connector, vae2llm/llm2vae and the timestep MLP are left out (well under 1% at 7B).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# Dense bf16 peak (no sparsity) per GPU, in FLOP/s, by device-name substring.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "H800": 989e12, "A100": 312e12, "A800": 312e12,
                   "L40S": 362e12, "B200": 2250e12}


@dataclass(frozen=True)
class ModelWidths:
    llm_hidden: int
    llm_intermediate: int
    llm_kv_width: int
    llm_layers: int
    vocab: int
    vit_hidden: int
    vit_intermediate: int
    vit_layers: int

    @classmethod
    def from_bagel_config(cls, config: Any) -> "ModelWidths":
        """From an object with ``.llm`` (Qwen2Config) and ``.vit`` (SiglipVisionConfig, layers as built)."""
        llm, vit = config.llm, config.vit
        head_dim = getattr(llm, "head_dim", None) or llm.hidden_size // llm.num_attention_heads
        return cls(llm.hidden_size, llm.intermediate_size, llm.num_key_value_heads * head_dim,
                   llm.num_hidden_layers, llm.vocab_size, vit.hidden_size, vit.intermediate_size,
                   vit.num_hidden_layers)


def attended_pairs(sample_lens: list[int], split_lens: list[int], attn_modes: list[str]) -> int:
    """(query, key) pairs of the packed LLM attention: causal/full/noise splits as the model masks them."""
    pairs, sample, filled, visible_before = 0, 0, 0, 0
    for n, mode in zip(split_lens, attn_modes):
        if filled >= sample_lens[sample]:
            sample, filled, visible_before = sample + 1, 0, 0
        own = n * (n + 1) // 2 if mode == "causal" else n * n
        pairs += own + n * visible_before
        if mode != "noise":  # nothing after a noise split may see it
            visible_before += n
        filled += n
    return pairs


def training_flops(batch: dict, widths: ModelWidths) -> float:
    """FLOPs of forward + backward on one packed batch (3 x the forward matmul FLOPs above)."""
    w = widths
    llm_tokens = int(batch["sequence_length"])
    pairs = attended_pairs(batch["sample_lens"], batch["split_lens"], batch["attn_modes"])
    per_token = 2 * (2 * w.llm_hidden ** 2 + 2 * w.llm_hidden * w.llm_kv_width + 3 * w.llm_hidden * w.llm_intermediate)
    llm = w.llm_layers * (llm_tokens * per_token + pairs * 4 * w.llm_hidden)
    vit_seqlens = torch.as_tensor(batch["vit_token_seqlens"], dtype=torch.float64)
    vit_tokens, vit_pairs = float(vit_seqlens.sum()), float((vit_seqlens ** 2).sum())
    vit_per_token = 2 * (4 * w.vit_hidden ** 2 + 2 * w.vit_hidden * w.vit_intermediate)
    vit = w.vit_layers * (vit_tokens * vit_per_token + vit_pairs * 4 * w.vit_hidden)
    ce = len(batch["ce_loss_indexes"]) * 2 * w.llm_hidden * w.vocab
    return 3.0 * (llm + vit + ce)


def peak_flops(device: torch.device) -> float | None:
    """Dense bf16 peak of ``device`` (None on CPU or an unknown GPU: MFU is then not reported)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
