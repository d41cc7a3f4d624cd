"""Run BAGEL on a GPU smaller than the model: keep the small modules and some layers on the GPU, stream the rest.

Modes (``OffloadSettings.mode``):

- ``none``: everything on the execution device.
- ``auto``: the small modules (embeddings, lm_head, vae2llm/llm2vae, time embedder, connector, position tables,
  final norms, rotary tables, ViT patch embedding and post-norm) and the VAE stay on the GPU, with as many whole
  decoder layers as fit in ``max_gpu_memory_gib`` after the activation reserve; then ViT encoder layers fill what is
  left. Every other layer stays in CPU memory and is streamed to the GPU for its forward.
- ``sequential``: only the small modules and the VAE on the GPU; every decoder and ViT layer streamed (lowest memory).

Decoder layers get the GPU first: they run in every prefill, decode and denoising forward, the ViT once per input
image. A streamed layer's weights live in (pinned) CPU memory; an accelerate hook on each of its weight-holding
modules (Linear, norm) copies that module's weights to the GPU just before its forward and drops them right after,
so only the experts a forward really uses cross the bus (decoding reads the understanding expert alone). Inputs are
not touched by the hooks: the KV stores stay where ``Bagel.new_cache`` put them (on the execution device, read from
``vae2llm``, which stays resident) and are written in place by every layer.

The hook is a small ``accelerate`` ``ModelHook`` rather than accelerate's ``AlignDevicesHook``/``cpu_offload``: that
one empties the CUDA cache after each tensor it loads (a device sync and fresh ``cudaMalloc``s, hundreds per
forward) and re-sends every input through ``.to``. Streaming cannot run inside a CUDA graph, so a streaming placement
asks for eager decoding (``Placement.inference_overrides``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate.hooks import ModelHook, add_hook_to_module
from accelerate.utils import named_module_tensors, set_module_tensor_to_device
from torch import nn
from transformers.models.siglip.modeling_siglip import SiglipEncoderLayer

from modeling.bagel.loader import BagelBundle, load_bagel
from modeling.bagel.mot_layer import Qwen2MoTDecoderLayer

OFFLOAD_MODES = ("none", "auto", "sequential")
GIB = 2 ** 30
# GPU memory beside the resident weights that a 1024x1024 edit needs: the full-GPU edit of BAGEL-7B-MoT peaked at
# 33.0 GiB with 27.4 GiB of weights (README), i.e. ~5.6 GiB for the KV caches of the three CFG contexts (~9k tokens
# each, 56 KiB per token over 28 layers), the activations of one batched 3 x 4098-token denoising forward and the
# VAE decode. Smaller images need less; lower it with ``reserve_gib``.
DEFAULT_RESERVE_GIB = 6.0
ALIGN_BYTES = 64  # start of each weight inside a layer's packed CPU buffer
STREAMED = "streamed"  # device-map value of a layer kept in CPU memory and copied to the device per forward


@dataclass(frozen=True)
class OffloadSettings:
    mode: str = "none"
    # auto: budget for PyTorch's allocations of the whole run (weights, caches, activations; what
    # torch.cuda.max_memory_allocated reports; the CUDA context, ~0.5 GiB, comes on top). Default: the free memory.
    max_gpu_memory_gib: float | None = None
    reserve_gib: float = DEFAULT_RESERVE_GIB  # auto: part of the budget kept for KV caches and activations
    pin_memory: bool = True  # streamed weights in page-locked memory (faster copies; CUDA only)

    def __post_init__(self) -> None:
        if self.mode not in OFFLOAD_MODES:
            raise ValueError(f"offload mode must be one of {', '.join(OFFLOAD_MODES)}, got {self.mode!r}")
        if self.max_gpu_memory_gib is not None:
            if self.mode != "auto":
                raise ValueError(f"--max-gpu-memory applies to --offload auto only (got --offload {self.mode})")
            if not math.isfinite(self.max_gpu_memory_gib) or self.max_gpu_memory_gib <= 0:
                raise ValueError(f"--max-gpu-memory must be a positive number of GiB, got {self.max_gpu_memory_gib}")
        if not math.isfinite(self.reserve_gib) or self.reserve_gib < 0:
            raise ValueError(f"the activation reserve must be >= 0 GiB, got {self.reserve_gib}")

    @classmethod
    def from_cli(cls, mode: str, max_gpu_memory: str | None) -> "OffloadSettings":
        """From the ``--offload`` and ``--max-gpu-memory`` strings (a bad number is a one-line ValueError)."""
        gib = None
        if max_gpu_memory is not None:
            try:
                gib = float(max_gpu_memory)
            except ValueError:
                raise ValueError(f"--max-gpu-memory must be a number of GiB such as 20 or 23.5, "
                                 f"got {max_gpu_memory!r}") from None
        return cls(mode, gib)


@dataclass
class Placement:
    mode: str
    device: torch.device
    device_map: dict[str, str]  # module name -> the device, or STREAMED; layers appear whole
    resident_bytes: int  # weights on the device (model and VAE)
    streamed_bytes: int  # weights streamed from CPU memory
    layers_on_device: dict[str, str]  # {"decoder": "13/28", "vit": "9/26"}

    @property
    def streamed(self) -> list[str]:
        return [name for name, where in self.device_map.items() if where == STREAMED]

    def inference_overrides(self) -> dict:
        """Settings a streaming placement needs: eager decoding (a CUDA graph cannot replay the weight copies) and
        eager denoising layers (torch.compile does not trace through the weight-streaming hooks)."""
        return {"cuda_graphs": False, "compile_layers": False} if self.streamed else {}

    def summary(self) -> dict:
        return {"mode": self.mode, "device": str(self.device), "layers_on_device": self.layers_on_device,
                "resident_gib": round(self.resident_bytes / GIB, 2), "streamed_gib": round(self.streamed_bytes / GIB, 2)}

    def describe(self) -> str:
        layers = ", ".join(f"{v} {k} layers" for k, v in self.layers_on_device.items())
        return (f"offload {self.mode}: on {self.device} {layers}; {self.resident_bytes / GIB:.2f} GiB of weights "
                f"resident, {self.streamed_bytes / GIB:.2f} GiB streamed from CPU memory")


def tensor_bytes(module: nn.Module, recurse: bool = True) -> int:
    return sum(t.numel() * t.element_size() for _, t in named_module_tensors(module, recurse=recurse))


def layer_blocks(model: nn.Module) -> dict[str, list[str]]:
    """Names of the offloadable layers by kind, in order of GPU priority (decoder first)."""
    names = {"decoder": [], "vit": []}
    for name, module in model.named_modules():
        if isinstance(module, Qwen2MoTDecoderLayer):
            names["decoder"].append(name)
        elif isinstance(module, SiglipEncoderLayer):
            names["vit"].append(name)
    return names


def _partition(module: nn.Module, prefix: str, blocks: set[str]) -> list[str]:
    """Module names covering ``module``: every block whole, and each largest subtree holding no block."""
    inside = [b for b in blocks if not prefix or b.startswith(f"{prefix}.")]
    if prefix in blocks or not inside:
        return [prefix]
    if tensor_bytes(module, recurse=False):
        raise ValueError(f"{prefix or 'the model'} holds tensors beside its layers; it cannot be placed by layers")
    out = []
    for child, sub in module.named_children():
        out += _partition(sub, f"{prefix}.{child}" if prefix else child, blocks)
    return out


def resolve_device(device: torch.device | str) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device} asked for CUDA but no CUDA GPU is visible; pass --device cpu")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def _budget_bytes(settings: OffloadSettings, device: torch.device) -> int:
    if settings.max_gpu_memory_gib is not None:
        return int(settings.max_gpu_memory_gib * GIB)
    if device.type != "cuda":
        raise ValueError(f"--offload auto on {device} needs --max-gpu-memory GIB (free memory is known on CUDA only)")
    return torch.cuda.mem_get_info(device)[0]


def plan_placement(bundle: BagelBundle, settings: OffloadSettings, device: torch.device | str) -> Placement:
    """Decide which layers stay on ``device`` (nothing is moved). The model must be materialised (not meta)."""
    device, model = resolve_device(device), bundle.model
    kinds = layer_blocks(model)
    order = kinds["decoder"] + kinds["vit"]
    sizes = {name: tensor_bytes(model.get_submodule(name)) for name in order}
    fixed = tensor_bytes(model) - sum(sizes.values()) + tensor_bytes(bundle.vae)
    if settings.mode == "none":
        on_device = set(order)
    elif settings.mode == "sequential":
        on_device = set()
    else:
        on_device = _fill_budget(model, order, sizes, fixed, settings, device)
    device_map = {name: (str(device) if name in on_device or name not in sizes else STREAMED)
                  for name in _partition(model, "", set(order))}
    streamed = sum(size for name, size in sizes.items() if name not in on_device)
    counts = {kind: f"{sum(n in on_device for n in names)}/{len(names)}" for kind, names in kinds.items()}
    return Placement(settings.mode, device, device_map, fixed + sum(sizes.values()) - streamed, streamed, counts)


def _fill_budget(model: nn.Module, order: list[str], sizes: dict[str, int], fixed: int, settings: OffloadSettings,
                 device: torch.device) -> set[str]:
    """Layers in priority order that fit the budget beside the small modules, the reserve and one streamed module."""
    budget = _budget_bytes(settings, device)
    room = budget - fixed - int(settings.reserve_gib * GIB)
    if sum(sizes.values()) <= room:
        return set(order)
    # while a streamed module runs, its weights occupy the device too
    slot = max(tensor_bytes(m, recurse=False) for name in order for m in model.get_submodule(name).modules())
    room -= slot
    if room < 0:
        need = (fixed + slot) / GIB + settings.reserve_gib
        raise ValueError(f"--max-gpu-memory {budget / GIB:.2f} GiB is below the {need:.2f} GiB offloading needs "
                         f"({fixed / GIB:.2f} GiB of always-resident modules and VAE, {settings.reserve_gib:g} GiB "
                         f"reserve for KV caches and activations, {slot / GIB:.2f} GiB for one streamed module); "
                         f"raise it")
    chosen = set()
    for name in order:
        if sizes[name] <= room:
            chosen.add(name)
            room -= sizes[name]
    return chosen


class StreamedWeightsHook(ModelHook):
    """Keeps a module's own tensors in CPU memory; copies them to ``device`` for each forward and drops them after."""

    def __init__(self, weights: dict[str, torch.Tensor], device: torch.device):
        self.weights, self.device = weights, device
        # the copies queue on the compute stream, so a dropped weight's memory is reused only after its kernels ran
        self.non_blocking = device.type == "cuda"

    def init_hook(self, module: nn.Module) -> nn.Module:
        for name in self.weights:
            set_module_tensor_to_device(module, name, "meta")
        return module

    def pre_forward(self, module: nn.Module, *args, **kwargs):
        for name, value in self.weights.items():
            set_module_tensor_to_device(module, name, self.device, value=value, non_blocking=self.non_blocking,
                                        clear_cache=False)
        return args, kwargs

    def post_forward(self, module: nn.Module, output):
        for name in self.weights:
            set_module_tensor_to_device(module, name, "meta")
        return output


def packed_copies(tensors: list[torch.Tensor], pin_memory: bool) -> list[torch.Tensor]:
    """Copies of ``tensors`` as views of one CPU buffer, page-locked with ``pin_memory``. One buffer per layer: the
    pinned allocator rounds every allocation up to a power of two (~2x for a 7B MLP matrix, 1.15x for a layer)."""
    starts, total = [], 0
    for t in tensors:
        starts.append(total)
        total += -(-t.numel() * t.element_size() // ALIGN_BYTES) * ALIGN_BYTES
    buffer = torch.empty(total, dtype=torch.uint8, pin_memory=pin_memory)
    copies = []
    for t, start in zip(tensors, starts):
        view = buffer[start:start + t.numel() * t.element_size()].view(t.dtype).view(t.shape)
        copies.append(view.copy_(t.detach()))
    return copies


def stream_layer(layer: nn.Module, device: torch.device, pin_memory: bool) -> None:
    """Hook every weight-holding module of ``layer`` so its weights stream from CPU memory to ``device``."""
    owners = [(module, dict(named_module_tensors(module))) for module in layer.modules()]
    owners = [(module, tensors) for module, tensors in owners if tensors]
    copies = iter(packed_copies([t for _, tensors in owners for t in tensors.values()],
                                pin_memory and device.type == "cuda"))
    for module, tensors in owners:
        add_hook_to_module(module, StreamedWeightsHook({name: next(copies) for name in tensors}, device))


def apply_placement(bundle: BagelBundle, placement: Placement, pin_memory: bool = True) -> None:
    """Move the resident modules and the VAE to the device and hook the streamed layers (in place, once)."""
    for name, where in placement.device_map.items():
        module = bundle.model.get_submodule(name)
        if where == STREAMED:
            stream_layer(module, placement.device, pin_memory)
        else:
            module.to(placement.device)
    bundle.vae.to(placement.device)


def place_bundle(bundle: BagelBundle, settings: OffloadSettings, device: torch.device | str) -> Placement:
    """Plan and apply a placement for a bundle held in CPU memory."""
    placement = plan_placement(bundle, settings, device)
    apply_placement(bundle, placement, settings.pin_memory)
    return placement


def load_bagel_offloaded(model_dir: str | Path, settings: OffloadSettings, device: torch.device | str = "cuda",
                         dtype: torch.dtype = torch.bfloat16, attn_backend: str = "auto"
                         ) -> tuple[BagelBundle, Placement]:
    """Load an official-layout folder into CPU memory, then place it on ``device`` as ``settings`` say."""
    device = resolve_device(device)
    if settings.mode == "auto":
        _budget_bytes(settings, device)  # a missing GPU or budget fails before the (slow) load
    bundle = load_bagel(model_dir, dtype, "cpu", attn_backend)
    return bundle, place_bundle(bundle, settings, device)
