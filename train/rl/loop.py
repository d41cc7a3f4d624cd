"""The Flow-GRPO loop: choose the trained set, spread it over ranks, resume; then per iteration roll out groups
(rewards scored while the next group is generated), gather rewards, compute advantages, update, log, checkpoint."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from inference.inferencer import BagelInferencer
from train.common.checkpoint import CheckpointManager, resume_checkpoint
from train.common.config import save_config, to_dict, to_yaml
from train.common.distributed import DistInfo, barrier
from train.common.ema import EMA
from train.common.lr_schedule import lr_at_step, set_lr
from train.common.metrics import MetricsLogger
from train.common.nan_guard import NanGuard, TrainingDiverged
from train.common.parallelize import DTYPES
from train.common.rng import seed_everything
from train.rl.advantages import Advantages, all_gather_rows, group_advantages
from train.rl.config import RLConfig
from train.rl.grid import group_grid
from train.rl.parallel import checkpoint_layers, gathered, shard_trainable
from train.rl.prompts import PromptStream
from train.rl.reward_calls import GroupScorer, group_requests, reward_matrix
from train.rl.rewards.base import RewardFunction, RewardResult
from train.rl.rollout import GroupRollout, derive_seed, rollout_group
from train.rl.trainable import export_state, kl_reference, select_trainable
from train.rl.update import GrpoUpdater, UpdateStats
from train.sft.step import make_adamw


@dataclass
class RLComponents:
    inferencer: BagelInferencer  # the SFT checkpoint (model, VAE, tokenizer)
    prompts: PromptStream  # this rank's edit prompts
    reward: RewardFunction
    # Rank 0 only: write the official folder layout from a full state dict (module names) into a directory.
    export: Callable[[dict[str, torch.Tensor], str], None] | None = None


@dataclass
class RunSummary:
    start_step: int
    final_step: int
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)  # iteration -> logged scalars


StepCallback = Callable[[int, dict[str, float]], None]


def _reward_scalars(results: list[list[RewardResult]], rewards: torch.Tensor, adv: Advantages) -> dict[str, float]:
    """Statistics of all ranks' rewards and advantages (``rewards``/``adv`` are the gathered matrices); the reward
    components are this rank's."""
    scored = rewards[~torch.isnan(rewards)]
    out = {"reward/mean": float(scored.mean()) if scored.numel() else float("nan"),
           "reward/std": float(scored.std(unbiased=False)) if scored.numel() else float("nan"),
           "reward/dropped": float(adv.dropped_samples),
           "groups/zero_variance_fraction": adv.zero_variance_groups / max(rewards.shape[0], 1)}
    components: dict[str, list[float]] = {}
    for group in results:
        for r in group:
            for name, value in r.components.items():
                components.setdefault(name, []).append(value)
    for name, values in components.items():
        out[f"reward/{name}/mean"], out[f"reward/{name}/std"] = float(np.mean(values)), float(np.std(values))
    used = adv.values[adv.mask]
    if used.numel():
        out.update({"adv/mean": float(used.mean()), "adv/std": float(used.std(unbiased=False)),
                    "adv/abs_max": float(used.abs().max())})
    return out


def run_grpo(cfg: RLConfig, parts: RLComponents, dist_info: DistInfo,
             on_step: StepCallback | None = None) -> RunSummary:
    """Train until ``cfg.train.total_steps`` iterations; resumes from the newest complete checkpoint."""
    device, rank, world = dist_info.device, dist_info.rank, dist_info.world_size
    seed_everything(cfg.train.seed + rank)
    model, settings = parts.inferencer.model, cfg.rollout.settings()
    model.eval()  # no dropout; the cached inference path serves rollouts and updates alike
    t = cfg.trainable
    counts = select_trainable(model, t.mode, t.include_latent_io, t.lora_rank, t.lora_alpha)
    if cfg.parallel.activation_checkpointing:
        checkpoint_layers(model)
    units = (shard_trainable(model, DTYPES[cfg.model.dtype], DTYPES[cfg.parallel.reduce_dtype], device.type)
             if t.mode == "full" else [])
    if units:  # FSDP2 hooks must not run inside a captured CUDA graph: decode the CoTs eagerly
        settings = replace(settings, inference=replace(settings.inference, cuda_graphs=False))
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    o = cfg.optim
    optimizer = make_adamw(list(named.values()), lr=o.lr, betas=tuple(o.betas), eps=o.eps,
                           weight_decay=o.weight_decay, device=device)
    ema = EMA(named, cfg.train.ema_decay) if cfg.train.ema_decay is not None else None
    guard = NanGuard(cfg.train.max_consecutive_bad_steps)
    reference = kl_reference(model, named) if cfg.grpo.kl_beta else None
    updater = GrpoUpdater(parts.inferencer, settings, cfg.grpo.update_settings(cfg.train, o.grad_clip), optimizer,
                          ema, guard, device, world, sharded=bool(units), reference=reference)
    ckpt = CheckpointManager(os.path.join(cfg.output_dir, "checkpoints"), cfg.checkpoint.keep_last, rank, world)

    start = 0
    resume_path = resume_checkpoint(ckpt) if cfg.checkpoint.resume else None
    if resume_path is not None:
        state, data_state = ckpt.load(resume_path, model, optimizer, ema)
        start = state.step
        guard.load_state_dict(state.extra["nan_guard"])
        parts.prompts.load_state_dict(data_state["prompts"])

    logger = MetricsLogger(enabled=dist_info.is_main, log_dir=os.path.join(cfg.output_dir, "logs"),
                           total_steps=cfg.train.total_steps, start_step=start, tensorboard=cfg.logging.tensorboard,
                           wandb_project=cfg.logging.wandb_project, run_name=cfg.logging.run_name,
                           config=to_dict(cfg))
    logger.message(f"config:\n{to_yaml(cfg)}")
    logger.message(f"world size {world}, trainable parameters: {counts}"
                   + (f"; resumed from {resume_path} at iteration {start}" if resume_path else ""))

    def save(step: int) -> None:
        ckpt.save(step, model, optimizer, ema, {"prompts": parts.prompts.state_dict()},
                  extra={"nan_guard": guard.state_dict()}, config_writer=lambda path: save_config(cfg, path))

    def export(step: int, final: bool = False) -> None:
        state = export_state(model, ema, DTYPES[cfg.checkpoint.export_dtype], dist_info.is_main)
        out = os.path.join(cfg.output_dir, "export", "final" if final else f"step_{step:08d}")
        if dist_info.is_main and parts.export is not None:
            parts.export(state, out)
            logger.message(f"exported {'EMA' if ema is not None else 'current'} weights to {out}")
        barrier()

    summary = RunSummary(start_step=start, final_step=start)
    per_rank = cfg.rollout.prompts_per_rank
    for step in range(start, cfg.train.total_steps):
        began = time.perf_counter()
        set_lr(optimizer, lr_at_step(step, lr=o.lr, min_lr=o.min_lr, warmup_steps=o.warmup_steps,
                                     total_steps=cfg.train.total_steps, schedule=o.schedule))
        scorer = GroupScorer(parts.reward)
        rollouts: list[GroupRollout] = []
        with gathered(units):
            for i, prompt in enumerate(parts.prompts.take(per_rank)):
                seed = derive_seed(cfg.train.seed, step, rank * per_rank + i)
                rollout = rollout_group(parts.inferencer, prompt, settings, step, seed)
                scorer.add(group_requests(prompt, rollout.cot_text, rollout.images, f"{step}/{rank}/{i}"))
                rollouts.append(rollout)
        rollout_s = time.perf_counter() - began
        results = scorer.collect()
        errors = [r.error for group in results for r in group if r.score is None]
        if errors:
            logger.message(f"step {step + 1}: {len(errors)} sample(s) of rank {rank} dropped without a reward, "
                           f"e.g. {errors[0]}")
        rewards = all_gather_rows(reward_matrix(results).to(device)).cpu()
        adv_all = group_advantages(rewards, cfg.grpo.global_std, cfg.grpo.adv_clip, cfg.grpo.min_group_std)
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        local_adv = Advantages(adv_all.values[mine], adv_all.mask[mine], adv_all.kept_groups[mine],
                               adv_all.zero_variance_groups, adv_all.dropped_samples)
        update_began = time.perf_counter()
        stats: UpdateStats = updater.update(rollouts, local_adv)
        done = step + 1
        elapsed = time.perf_counter() - began
        scalars = {**_reward_scalars(results, rewards, adv_all), **stats.summary(),
                   "lr": optimizer.param_groups[0]["lr"], "steps_per_s": 1.0 / elapsed, "rollout_s": rollout_s,
                   "reward_wait_s": scorer.wait_s, "update_s": time.perf_counter() - update_began}
        summary.final_step, summary.metrics[done] = done, scalars
        logger.step()
        if on_step is not None:
            on_step(done, scalars)
        if guard.should_stop:
            save(done)
            raise TrainingDiverged(guard.stop_message(done))
        if done % cfg.logging.every == 0 or done == cfg.train.total_steps:
            logger.log(done, scalars)
        if dist_info.is_main and cfg.logging.image_every and done % cfg.logging.image_every == 0:
            grid = group_grid(rollouts[0], results[0], local_adv.values[0].tolist())
            os.makedirs(os.path.join(cfg.output_dir, "rollouts"), exist_ok=True)
            grid.save(os.path.join(cfg.output_dir, "rollouts", f"step_{done:08d}.png"))
            logger.log_image(done, "rollouts/group", grid)
        if done % cfg.checkpoint.every == 0 or done == cfg.train.total_steps:
            save(done)
        if cfg.checkpoint.export_every and done % cfg.checkpoint.export_every == 0:
            export(done)
    if summary.final_step == cfg.train.total_steps:
        export(summary.final_step, final=True)
    logger.close()
    return summary
