"""Training-step benchmark on a fixed workload (random weights), in two modes.

- ``original``: what the original BAGEL trainer does on one GPU: bf16 parameters, bf16 gradients and bf16 AdamW
  states, no sharding.
- ``trainer``: this trainer's real mode: FSDP2 (a world of one), float32 master weights / AdamW states / EMA,
  bf16 compute, optional activation checkpointing.

Both run the same ``train_step`` (forward + backward + clip + AdamW [+ EMA]) on one packed batch.
MFU = training FLOPs / (seconds per step * peak), FLOPs as written in ``train/common/flops.py``:
3 x [L * (tokens * 2(2H^2 + 2H*Hkv + 3H*I) + attended_pairs * 4H) + Lv * (vit_tokens * 2(4Hv^2 + 2Hv*Iv)
+ vit_pairs * 4Hv) + ce_tokens * 2H*vocab].
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.distributed.tensor import DTensor

from modeling.bagel.config import BagelConfig
from modeling.bagel.embeddings import PositionEmbedding, sincos_2d_table
from modeling.bagel.loader import build_bagel, reset_non_persistent_buffers
from modeling.vae.autoencoder import FluxAutoencoder
from train.common.ema import EMA
from train.common.flops import ModelWidths, peak_flops, training_flops
from train.common.nan_guard import NanGuard
from train.common.parallelize import ParallelPlan, build_mesh, get_submodule_list, parallelize
from train.sft.build import BLOCK_LISTS
from train.sft.step import make_adamw, train_step

Mode = Literal["original", "trainer"]


@dataclass
class BenchResult:
    mode: str
    seconds_per_step: float
    tokens_per_s: float
    tflop_per_step: float
    mfu: float | None
    peak_mem_gib: float | None
    tokens: int
    skipped_steps: int


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if isinstance(t, DTensor) else t


@torch.no_grad()
def init_on_device(model: nn.Module, seed: int = 0, std: float = 0.02) -> None:
    """Random weights drawn on the model's own device (fast for billions of parameters); unsharded or a world of 1."""
    gen = torch.Generator(device=_local(next(model.parameters())).device).manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            _local(module.weight).normal_(0.0, std, generator=gen)
            if getattr(module, "bias", None) is not None:
                _local(module.bias).zero_()
        elif isinstance(module, PositionEmbedding):
            table = sincos_2d_table(module.pos_embed.shape[1], module.max_side)
            _local(module.pos_embed).copy_(torch.from_numpy(table))
        elif isinstance(getattr(module, "weight", None), nn.Parameter) and module.weight.dim() == 1:
            _local(module.weight).fill_(1.0)  # LayerNorm / RMSNorm
            if getattr(module, "bias", None) is not None:
                _local(module.bias).zero_()


def build_bench_model(config: BagelConfig, mode: Mode, device: torch.device, attn_backend: str,
                      activation_checkpointing: bool, compile_blocks: bool) -> nn.Module:
    model = build_bagel(config, "meta", attn_backend=attn_backend)
    if mode == "trainer":
        plan = ParallelPlan(block_lists=BLOCK_LISTS, param_dtype="bfloat16" if device.type == "cuda" else "float32",
                            activation_checkpointing=activation_checkpointing, compile_blocks=compile_blocks)
        parallelize(model, plan, build_mesh(device.type, 1, 0))
    elif compile_blocks:
        for path in BLOCK_LISTS:
            for block in get_submodule_list(model, path):
                block.compile()
    model.to_empty(device=device)
    reset_non_persistent_buffers(model)
    init_on_device(model)
    if mode == "original":
        model.to(torch.bfloat16 if device.type == "cuda" else torch.float32)
    return model.train()


def run_benchmark(config: BagelConfig, batch: dict, mode: Mode, device: torch.device, *, steps: int, warmup: int,
                  attn_backend: str = "auto", activation_checkpointing: bool = False, compile_blocks: bool = False,
                  adamw: str = "auto", profile_path: str | None = None) -> BenchResult:
    """Median seconds per step over ``steps`` after ``warmup``; with ``profile_path`` one more step is profiled and
    its kernel table (by total CUDA time) written there."""
    model = build_bench_model(config, mode, device, attn_backend, activation_checkpointing, compile_blocks)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    optimizer = make_adamw(list(params.values()), lr=1e-5, betas=(0.9, 0.95), eps=1e-15, weight_decay=0.0,
                           device=device, impl=adamw)
    ema = EMA(params, 0.9999) if mode == "trainer" else None
    guard = NanGuard(max_consecutive=10 ** 9)
    batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
    times = []
    for step in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        train_step(model, optimizer, ema, guard, [batch], device=device, world_size=1, encode_images=None,
                   ce_weight=1.0, mse_weight=1.0, grad_clip=1.0)  # ends with .item() syncs: the step is complete
        if step >= warmup:
            times.append(time.perf_counter() - start)
    if profile_path is not None:
        activities = [torch.profiler.ProfilerActivity.CPU] + (
            [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch.profiler.profile(activities=activities) as prof:
            train_step(model, optimizer, ema, guard, [batch], device=device, world_size=1, encode_images=None,
                       ce_weight=1.0, mse_weight=1.0, grad_clip=1.0)
        sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        with open(profile_path, "w") as f:
            f.write(prof.key_averages().table(sort_by=sort, row_limit=40, max_name_column_width=90))
    seconds = statistics.median(times)
    flops = training_flops(batch, ModelWidths.from_bagel_config(config))
    peak = peak_flops(device)
    memory = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    return BenchResult(mode=mode, seconds_per_step=seconds, tokens_per_s=batch["sequence_length"] / seconds,
                       tflop_per_step=flops / 1e12, mfu=flops / seconds / peak if peak else None,
                       peak_mem_gib=memory, tokens=int(batch["sequence_length"]), skipped_steps=guard.skipped_total)


def time_vae_encode(config: BagelConfig, images: int, side: int, device: torch.device, repeats: int = 3) -> float:
    """Seconds to encode ``images`` random side x side images with a random-weight AE (bf16 on CUDA)."""
    vae = FluxAutoencoder(config.ae).to(device=device, dtype=torch.bfloat16 if device.type == "cuda" else torch.float32)
    pixels = torch.rand(images, 3, side, side, device=device) * 2 - 1
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            vae.encode(pixels)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])
