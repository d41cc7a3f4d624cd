"""Freezing switches, selecting BAGEL parameters by their (official) names.

- und expert: LLM weights without 'moe_gen' (embeddings, attention/MLP/norms of the understanding path, lm_head)
- gen expert: LLM weights with 'moe_gen', plus vae2llm, llm2vae, time_embedder, latent_pos_embed
- vit: the SigLIP encoder; connector: connector MLP and vit_pos_embed
The VAE is a separate module and never trained. Freezing only turns ``requires_grad`` off; parameters the model
itself keeps frozen (fixed sin-cos tables) stay frozen.
"""

from __future__ import annotations

from torch import nn

_GEN_MODULES = ("vae2llm.", "llm2vae.", "time_embedder.", "latent_pos_embed.")


def parameter_group(name: str) -> str:
    """'und', 'gen', 'vit', 'connector' or 'other' for a BAGEL parameter name."""
    if name.startswith("language_model."):
        return "gen" if "moe_gen" in name else "und"
    if name.startswith(_GEN_MODULES):
        return "gen"
    if name.startswith("vit_model."):
        return "vit"
    if name.startswith(("connector.", "vit_pos_embed.")):
        return "connector"
    return "other"


def apply_freezing(model: nn.Module, *, und: bool, gen: bool, vit: bool, connector: bool) -> dict[str, int]:
    """Turn off gradients of the selected groups; returns trainable parameter counts per group."""
    frozen = {"und": und, "gen": gen, "vit": vit, "connector": connector, "other": False}
    trainable: dict[str, int] = {}
    for name, param in model.named_parameters():
        group = parameter_group(name)
        if frozen[group]:
            param.requires_grad_(False)
        if param.requires_grad:
            trainable[group] = trainable.get(group, 0) + param.numel()
    if not trainable:
        raise ValueError("every parameter is frozen; unset at least one of model.freeze_und/gen/vit/connector")
    return trainable
