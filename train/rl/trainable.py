"""What Flow-GRPO trains: the generation expert (its ``*_moe_gen`` weights), fully or through LoRA adapters.

- ``full``: every parameter whose name contains ``moe_gen`` (attention and MLP projections, q/k norms, layer norms,
  the final gen norm), as the flow_grpo BAGEL port does; float32 master copies (FSDP2, see ``parallel.py``).
- ``lora``: peft adapters on the gen expert's linear layers (q/k/v/o ``_moe_gen`` and ``mlp_moe_gen`` gate/up/down),
  adapter weights in float32 on a frozen base (bf16 masters round the ~1e-5 GRPO updates away); merged into the
  base weights for export.
- ``include_latent_io``: also the latent projections and the timestep embedder (``vae2llm``, ``llm2vae``,
  ``time_embedder``), whole, float32. The latent position table is a fixed sin-cos table and stays frozen.
Everything else (understanding expert, ViT, connector, embeddings, the VAE) is frozen.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Callable, Iterator

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn
from torch.distributed.tensor import DTensor

from train.common.ema import EMA

MODES = ("lora", "full")
LORA_TARGETS = r".*\.(self_attn\.(q|k|v|o)_proj_moe_gen|mlp_moe_gen\.(gate|up|down)_proj)"
LATENT_IO_MODULES = ("vae2llm", "llm2vae", "time_embedder")
ADAPTER = "default"


def select_trainable(model: nn.Module, mode: str, include_latent_io: bool = False, lora_rank: int = 64,
                     lora_alpha: float = 128.0) -> dict[str, int]:
    """Freeze everything, then make the chosen set trainable (injecting LoRA adapters in ``lora`` mode, in place).
    Returns trainable parameter counts per part."""
    if mode not in MODES:
        raise ValueError(f"trainable mode {mode!r}: choose one of {MODES}")
    model.requires_grad_(False)
    counts: dict[str, int] = {}
    if mode == "lora":
        inject_adapter_in_model(LoraConfig(r=lora_rank, lora_alpha=lora_alpha, lora_dropout=0.0,
                                           target_modules=LORA_TARGETS), model, adapter_name=ADAPTER)
        for name, param in model.named_parameters():
            if ".lora_" in name:
                param.data = param.data.float()
                param.requires_grad_(True)
                counts["lora"] = counts.get("lora", 0) + param.numel()
        if not counts:
            raise ValueError("no generation-expert linear layer matched the LoRA targets; is this a BAGEL MoT model?")
    else:
        for name, param in model.named_parameters():
            if "moe_gen" in name:
                param.requires_grad_(True)
                counts["gen_expert"] = counts.get("gen_expert", 0) + param.numel()
    if include_latent_io:
        for module_name in LATENT_IO_MODULES:
            for param in model.get_submodule(module_name).parameters():
                param.data = param.data.float()
                param.requires_grad_(True)
                counts["latent_io"] = counts.get("latent_io", 0) + param.numel()
    return counts


def lora_layers(model: nn.Module) -> Iterator[tuple[str, LoraLayer]]:
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            yield name, module


@contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """The base model (LoRA adapters switched off): the frozen reference of the KL term in LoRA mode."""
    layers = [layer for _, layer in lora_layers(model)]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield model
    finally:
        for layer in layers:
            layer.enable_adapters(True)


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if isinstance(t, DTensor) else t


def export_state(model: nn.Module, ema: EMA | None, dtype: torch.dtype, is_main: bool) -> dict[str, torch.Tensor]:
    """The model's weights under their official (module) names, EMA values for trained parameters when EMA is on,
    LoRA adapters merged into their base weights (W + scale * B @ A, in float32). All ranks call it (sharded
    tensors are gathered); only rank 0's result is filled."""
    values = {name: (ema.shadow[name] if ema is not None and name in ema.shadow else p)
              for name, p in model.named_parameters()}
    persistent = set(model.state_dict())
    values.update({name: b for name, b in model.named_buffers() if name in persistent})
    merged: dict[str, torch.Tensor] = {}
    for prefix, layer in lora_layers(model):
        a = _full(values.pop(f"{prefix}.lora_A.{ADAPTER}.weight")).float()
        b = _full(values.pop(f"{prefix}.lora_B.{ADAPTER}.weight")).float()
        base = _full(values.pop(f"{prefix}.base_layer.weight")).float()
        merged[f"{prefix}.weight"] = base + layer.scaling[ADAPTER] * (b @ a)
        if f"{prefix}.base_layer.bias" in values:
            merged[f"{prefix}.bias"] = values.pop(f"{prefix}.base_layer.bias")
    state: dict[str, torch.Tensor] = {}
    for name, value in {**values, **merged}.items():
        full = _full(value).detach()  # a collective for sharded tensors: every rank takes part
        if is_main:
            state[name] = full.to(device="cpu", dtype=dtype if full.is_floating_point() else full.dtype)
    return state


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if isinstance(t, DTensor) else t


class InitialWeights:
    """The trained parameters' starting values (this rank's shards): the KL reference in full mode. ``active()``
    swaps them in (values copied in place, so FSDP2's sharded storage stays where it is) and back out."""

    def __init__(self, params: list[nn.Parameter]) -> None:
        self.params = params
        self.values = [_local(p).detach().clone() for p in params]

    @contextmanager
    def active(self) -> Iterator[None]:
        with torch.no_grad():
            current = [_local(p).detach().clone() for p in self.params]
            for p, value in zip(self.params, self.values):
                _local(p).copy_(value)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, value in zip(self.params, current):
                    _local(p).copy_(value)


def kl_reference(model: nn.Module, named_trainable: dict[str, nn.Parameter]) -> Callable[[], AbstractContextManager]:
    """A function entering the reference policy for the KL term: LoRA adapters off and fully trained parameters back
    at their initial values."""
    whole = [p for name, p in named_trainable.items() if ".lora_" not in name]
    initial = InitialWeights(whole) if whole else None

    @contextmanager
    def reference() -> Iterator[None]:
        with adapters_disabled(model), (initial.active() if initial is not None else nullcontext()):
            yield

    return reference
