"""The SFT training loop: set up sharding, optimizer, EMA and resume, then step, log, checkpoint and export."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from train.common.checkpoint import CheckpointManager, resume_checkpoint
from train.common.config import save_config, to_dict, to_yaml
from train.common.distributed import DistInfo, barrier
from train.common.ema import EMA
from train.common.flops import peak_flops, training_flops
from train.common.lr_schedule import lr_at_step, set_lr
from train.common.metrics import MetricsLogger
from train.common.nan_guard import NanGuard, TrainingDiverged
from train.common.parallelize import ParallelPlan, build_mesh, parallelize
from train.common.rng import seed_everything
from train.sft.components import TrainComponents
from train.sft.config import SFTConfig
from train.sft.export import export_run, gather_export_state
from train.sft.freezing import apply_freezing
from train.sft.meter import WindowMeter
from train.sft.step import StepResult, make_adamw, train_step

StepCallback = Callable[[int, StepResult], None]


@dataclass
class RunSummary:
    start_step: int
    final_step: int
    losses: dict[int, float] = field(default_factory=dict)  # step -> global loss
    skipped_steps: int = 0


def run_sft(cfg: SFTConfig, parts: TrainComponents, dist_info: DistInfo,
            on_step: StepCallback | None = None) -> RunSummary:
    """Train until ``cfg.train.total_steps``; resumes from the newest intact checkpoint when one exists."""
    device, rank, world = dist_info.device, dist_info.rank, dist_info.world_size
    seed_everything(cfg.train.seed + rank)
    model = parts.model
    trainable_counts = apply_freezing(model, und=cfg.model.freeze_und, gen=cfg.model.freeze_gen,
                                      vit=cfg.model.freeze_vit, connector=cfg.model.freeze_connector)
    plan = ParallelPlan(block_lists=parts.block_lists, param_dtype=cfg.parallel.param_dtype,
                        reduce_dtype=cfg.parallel.reduce_dtype,
                        activation_checkpointing=cfg.parallel.activation_checkpointing,
                        ac_every=cfg.parallel.ac_every, compile_blocks=cfg.parallel.compile_blocks,
                        shard_group_size=cfg.parallel.shard_group_size)
    parallelize(model, plan, build_mesh(device.type, world, cfg.parallel.shard_group_size))
    if parts.materialize is not None:
        parts.materialize(model, device)
    named_trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    o = cfg.optim
    optimizer = make_adamw(list(named_trainable.values()), lr=o.lr, betas=tuple(o.betas), eps=o.eps,
                           weight_decay=o.weight_decay, device=device)
    ema = EMA(named_trainable, cfg.train.ema_decay, cfg.train.ema_warmup)
    guard = NanGuard(cfg.train.max_consecutive_bad_steps)
    ckpt = CheckpointManager(os.path.join(cfg.output_dir, "checkpoints"), cfg.checkpoint.keep_last, rank, world)

    start_step = 0
    resume_path = resume_checkpoint(ckpt) if cfg.checkpoint.resume else None
    if resume_path is not None:
        state, data_state = ckpt.load(resume_path, model, optimizer, ema,
                                      restore_data=not cfg.checkpoint.restart_data_stream)
        start_step = state.step
        guard.load_state_dict(state.extra["nan_guard"])
        if data_state is not None:
            parts.data.load_state_dict(data_state)

    logger = MetricsLogger(enabled=dist_info.is_main, log_dir=os.path.join(cfg.output_dir, "logs"),
                           total_steps=cfg.train.total_steps, start_step=start_step,
                           tensorboard=cfg.logging.tensorboard, wandb_project=cfg.logging.wandb_project,
                           run_name=cfg.logging.run_name, config=to_dict(cfg))
    logger.message(f"config:\n{to_yaml(cfg)}")
    logger.message(f"world size {world}, trainable parameters per group: {trainable_counts}"
                   + (f"; resumed from {resume_path} at step {start_step}" if resume_path else ""))

    def save(step: int) -> None:
        ckpt.save(step, model, optimizer, ema, parts.data.state_dict(),
                  extra={"nan_guard": guard.state_dict()}, config_writer=lambda path: save_config(cfg, path))

    def export(step: int, final: bool = False) -> None:
        if parts.export is None:
            return
        out = os.path.join(cfg.output_dir, "export", "final" if final else f"step_{step:08d}")
        export_run(model, ema, out, cfg.checkpoint.export_dtype, dist_info.is_main, parts.export)
        logger.message(f"exported EMA weights to {out}")

    def validate(step: int) -> None:
        if parts.validate is None:
            return
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        state = gather_export_state(model, ema, dtype, dist_info.is_main)
        if dist_info.is_main:
            grid = parts.validate(state, os.path.join(cfg.output_dir, "validation", f"step_{step:08d}"))
            logger.log_image(step, "validation/edits", grid)
        del state
        barrier()

    summary = RunSummary(start_step=start_step, final_step=start_step)
    meter = WindowMeter(device, world, peak_flops(device), cfg.loss.ce_weight, cfg.loss.mse_weight)
    data_iter = iter(parts.data)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for step in range(start_step, cfg.train.total_steps):
        set_lr(optimizer, lr_at_step(step, lr=o.lr, min_lr=o.min_lr, warmup_steps=o.warmup_steps,
                                     total_steps=cfg.train.total_steps, schedule=o.schedule))
        micro = [next(data_iter) for _ in range(cfg.train.grad_accum_steps)]
        flops = sum(training_flops(b, parts.widths) for b in micro) if parts.widths is not None else 0.0
        result = train_step(model, optimizer, ema, guard, micro, device=device, world_size=world,
                            encode_images=parts.encode_images, ce_weight=cfg.loss.ce_weight,
                            mse_weight=cfg.loss.mse_weight, grad_clip=o.grad_clip,
                            ce_reweighting=cfg.loss.ce_reweighting)
        done = step + 1
        summary.final_step, summary.losses[done] = done, result.loss
        meter.add(result, flops)
        logger.step()
        if not result.applied:
            logger.message(f"step {done}: non-finite loss {result.loss} or grad norm {result.grad_norm}; update "
                           f"skipped ({guard.consecutive} in a row, {guard.skipped_total} in total)")
        if on_step is not None:
            on_step(done, result)
        if guard.should_stop:
            save(done)
            raise TrainingDiverged(guard.stop_message(done))
        if done % cfg.logging.every == 0 or done == cfg.train.total_steps:
            logger.log(done, meter.report(result, optimizer.param_groups[0]["lr"], guard.skipped_total))
        paused = time.perf_counter()
        if done % cfg.checkpoint.every == 0 or done == cfg.train.total_steps:
            save(done)
        if cfg.checkpoint.export_every and done % cfg.checkpoint.export_every == 0:
            export(done)
        if cfg.validation.every and done % cfg.validation.every == 0:
            validate(done)
        meter.exclude(time.perf_counter() - paused)
    if summary.final_step == cfg.train.total_steps:
        export(summary.final_step, final=True)
    summary.skipped_steps = guard.skipped_total
    logger.close()
    return summary
