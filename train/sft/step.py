"""One optimizer step: micro-batches -> token-mean loss -> backward -> clip -> NaN guard -> AdamW -> EMA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from train.common.distributed import all_reduce_sum
from train.common.ema import EMA
from train.common.grads import clip_grad_norm
from train.common.nan_guard import NanGuard
from train.sft.loss import LossSums, loss_sums, micro_batch_loss


@dataclass
class StepResult:
    loss: float            # global token-mean objective of the step
    ce: float              # global CE token mean (nan when the step had no CE tokens)
    mse: float
    grad_norm: float
    applied: bool          # False when the NaN guard skipped the update
    tokens: float          # packed tokens over all ranks and micro-batches
    sums: LossSums         # this rank's per-group sums (for per-dataset logging)


def make_adamw(params: list[nn.Parameter], *, lr: float, betas: tuple[float, float], eps: float,
               weight_decay: float, device: torch.device, impl: str = "auto") -> torch.optim.AdamW:
    """AdamW, ``impl`` 'fused' (one CUDA kernel), 'foreach', or 'auto': fused on GPUs (measured on an H200, plain
    and FSDP2 parameters alike: 0.84 vs 0.86 s per benchmark step in the trainer's mode), foreach on CPU."""
    if impl not in ("auto", "fused", "foreach"):
        raise ValueError(f"AdamW implementation {impl!r}: choose auto, fused or foreach")
    fused = impl == "fused" or (impl == "auto" and device.type == "cuda")
    return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused,
                             foreach=None if fused else True)


def prepare_batch(batch: dict[str, Any], device: torch.device,
                  encode_images: Callable[[torch.Tensor], torch.Tensor] | None) -> dict[str, Any]:
    """Move tensors to ``device``; VAE-encode ``padded_images`` into ``padded_latent`` without gradients."""
    out = {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
    if encode_images is not None and "padded_images" in out:
        images = out.pop("padded_images")
        with torch.no_grad():  # a batch without VAE images keeps an empty tensor (the model then skips latents)
            out["padded_latent"] = encode_images(images) if images.shape[0] else images
    return out


def _safe_div(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA | None, guard: NanGuard,
               micro_batches: list[dict[str, Any]], *, device: torch.device, world_size: int,
               encode_images: Callable[[torch.Tensor], torch.Tensor] | None, ce_weight: float, mse_weight: float,
               grad_clip: float, ce_reweighting: bool = False) -> StepResult:
    n_ce = sum(len(b["ce_loss_indexes"]) for b in micro_batches)
    ce_norm = sum(float(b["ce_loss_weights"].sum()) for b in micro_batches) if ce_reweighting else n_ce
    n_mse = sum(len(b["mse_loss_indexes"]) for b in micro_batches)
    n_tokens = sum(int(b["sequence_length"]) for b in micro_batches)
    global_ce, global_mse, global_tokens, global_ce_norm = all_reduce_sum([n_ce, n_mse, n_tokens, ce_norm], device)
    sums = LossSums()
    for raw in micro_batches:
        batch = prepare_batch(raw, device, encode_images)
        losses = model.forward_train(batch)
        loss = micro_batch_loss(losses.ce, losses.mse, global_ce_tokens=global_ce_norm, global_mse_tokens=global_mse,
                                ce_weight=ce_weight, mse_weight=mse_weight, world_size=world_size,
                                ce_token_weights=batch["ce_loss_weights"] if ce_reweighting else None)
        loss.backward()
        sums.add(loss_sums(losses.ce, losses.mse, batch))
    params = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = clip_grad_norm(params, grad_clip)
    ce_sum, mse_sum = all_reduce_sum([sums.totals[0], sums.totals[2]], device)
    ce_mean, mse_mean = _safe_div(ce_sum, global_ce), _safe_div(mse_sum, global_mse)
    total = (ce_weight * ce_mean if global_ce else 0.0) + (mse_weight * mse_mean if global_mse else 0.0)
    applied = guard.check(total, grad_norm)
    if applied:
        optimizer.step()
        if ema is not None:
            ema.update()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(loss=total, ce=ce_mean, mse=mse_mean, grad_norm=grad_norm, applied=applied,
                      tokens=global_tokens, sums=sums)
