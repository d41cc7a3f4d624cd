"""The Flow-GRPO run config (YAML under ``configs/rl/`` + dotted overrides, see ``train.common.config``).

Defaults follow the open BAGEL Flow-GRPO ports where the Meta-CoT paper is silent (shared/docs/flow_grpo_notes.md).
One training step = one iteration: every rank rolls out ``rollout.prompts_per_rank`` groups, the rewards are
gathered, then ``train.updates_per_step`` optimizer steps (x ``train.inner_epochs``) train on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from inference.settings import InferenceSettings
from modeling.diffusion.guidance import RENORM_TYPES
from modeling.diffusion.sde import SDE_KINDS
from modeling.diffusion.sde_window import PLACEMENTS, WindowSpec
from train.common.config import ConfigError
from train.rl.policy import PolicySpec
from train.rl.rewards.server import RewardServerConfig
from train.rl.rollout import COT_SOURCES, RolloutSettings
from train.rl.trainable import MODES
from train.rl.update import UpdateSettings

DType = Literal["float32", "bfloat16"]


@dataclass
class ModelConfig:
    model_dir: str = ""  # the SFT checkpoint to start from, in the official layout (ema.safetensors, tokenizer)
    dtype: DType = "bfloat16"  # frozen weights and compute; trained weights keep float32 masters
    vae_dtype: DType = "bfloat16"
    attn_backend: Literal["auto", "flash", "flex", "sdpa"] = "auto"

    def validate(self) -> None:
        if not self.model_dir:
            raise ConfigError("model.model_dir is empty; point it at an SFT checkpoint in the official layout")


@dataclass
class TrainableConfig:
    mode: Literal["lora", "full"] = "lora"  # lora: peft adapters on the gen expert; full: every *_moe_gen weight
    include_latent_io: bool = False  # also train vae2llm, llm2vae and the timestep embedder (float32)
    lora_rank: int = 64  # BAGEL ports: r 64, alpha 128 on q/k/v/o_moe_gen and mlp_moe_gen
    lora_alpha: float = 128.0

    def validate(self) -> None:
        if self.mode not in MODES or self.lora_rank < 1:
            raise ConfigError(f"trainable.mode must be one of {MODES} and lora_rank >= 1")


@dataclass
class DataConfig:
    paths: list[str] = field(default_factory=list)  # edit JSONL/parquet files, folders, globs; a benchmark folder
    image_root: str | None = None  # JSONL image paths relative to this (default: the JSONL file's folder)
    max_prompts: int | None = None  # use only the first N records of each source
    seed: int = 0  # prompt order (epochs reshuffle)

    def validate(self) -> None:
        if not self.paths:
            raise ConfigError("data.paths is empty; list edit prompt files or a ShapesEdit benchmark folder")


@dataclass
class WindowConfig:
    size: int = 3  # SDE steps per rollout (flow_grpo BAGEL: 3 full FT, 2 LoRA)
    placement: Literal["fixed", "random", "sliding"] = "random"
    range_start: int = 0
    range_end: int = 7  # exclusive: the high-noise half of 14 steps
    slide_every: int = 25  # sliding: iterations per window move (MixGRPO)


@dataclass
class RolloutConfig:
    group_size: int = 16  # G edits per prompt
    prompts_per_rank: int = 2  # groups each rank rolls out per iteration
    num_timesteps: int = 15  # grid points (14 steps), as flow_grpo's BAGEL port
    timestep_shift: float = 3.0
    sde_kind: Literal["flow_sde", "cps"] = "flow_sde"
    noise_level: float = 1.3  # flow_grpo BAGEL (Flow-SDE); CPS: 0.8
    window: WindowConfig = field(default_factory=WindowConfig)
    cfg: bool = True  # guidance inside the policy (flow_grpo BAGEL); false: cond only (Flow-Factory, UniRL)
    cfg_text_scale: float = 4.0
    cfg_img_scale: float = 2.0  # the official edit default
    cfg_interval: list[float] = field(default_factory=lambda: [0.0, 1.0])
    cfg_renorm_type: str = "global"
    cfg_renorm_min: float = 0.0
    cot_source: Literal["model", "dataset", "none"] = "model"  # model: the understanding expert writes it once
    max_think_tokens: int = 1024
    think_do_sample: bool = False
    think_temperature: float = 0.3
    vae_transform: list[int] = field(default_factory=lambda: [512, 256, 16])  # [max, min, stride]: 512 px edits
    vit_transform: list[int] = field(default_factory=lambda: [490, 224, 14])

    def validate(self) -> None:
        if self.sde_kind not in SDE_KINDS or self.window.placement not in PLACEMENTS:
            raise ConfigError(f"rollout.sde_kind in {SDE_KINDS}, rollout.window.placement in {PLACEMENTS}")
        if self.cfg_renorm_type not in RENORM_TYPES or self.cot_source not in COT_SOURCES:
            raise ConfigError(f"rollout.cfg_renorm_type in {RENORM_TYPES}, rollout.cot_source in {COT_SOURCES}")
        if self.prompts_per_rank < 1 or self.window.size < 1:
            raise ConfigError("rollout.prompts_per_rank and rollout.window.size must be >= 1")
        try:
            self.settings()
        except ValueError as e:
            raise ConfigError(f"rollout: {e}") from None

    def settings(self) -> RolloutSettings:
        w = self.window
        return RolloutSettings(
            group_size=self.group_size, num_timesteps=self.num_timesteps, timestep_shift=self.timestep_shift,
            window=WindowSpec(w.size, w.placement, w.range_start, w.range_end, w.slide_every),
            policy=PolicySpec(self.sde_kind, self.noise_level, self.cfg, self.cfg_text_scale, self.cfg_img_scale,
                              tuple(self.cfg_interval), self.cfg_renorm_type, self.cfg_renorm_min),
            cot_source=self.cot_source,
            inference=InferenceSettings(
                cfg_text_scale=self.cfg_text_scale, cfg_img_scale=self.cfg_img_scale,
                cfg_interval=tuple(self.cfg_interval), cfg_renorm_type=self.cfg_renorm_type,
                timestep_shift=self.timestep_shift, num_timesteps=self.num_timesteps,
                max_think_token_n=self.max_think_tokens, do_sample=self.think_do_sample,
                temperature=self.think_temperature, vae_transform=tuple(self.vae_transform),
                vit_transform=tuple(self.vit_transform), compile_layers=False))


@dataclass
class GRPOConfig:
    clip_low: float = 1e-5  # ratio floor 1 - clip_low (BAGEL ports: 1e-5 both ways)
    clip_high: float = 1e-5
    adv_clip: float = 5.0
    global_std: bool = False  # false: per-group std (flow_grpo BAGEL); true: std of the whole iteration
    min_group_std: float = 1e-6  # groups whose rewards spread less are dropped (no signal)
    kl_beta: float = 0.0  # exact per-element KL to the initial policy (see modeling/diffusion/sde.py for the dt)

    def validate(self) -> None:
        if self.clip_low <= 0 or self.clip_high <= 0 or self.adv_clip <= 0 or self.kl_beta < 0:
            raise ConfigError("grpo.clip_low/clip_high/adv_clip must be > 0 and grpo.kl_beta >= 0")

    def update_settings(self, train: "TrainConfig", grad_clip: float) -> UpdateSettings:
        return UpdateSettings(self.clip_low, self.clip_high, self.kl_beta, train.inner_epochs,
                              train.updates_per_step, grad_clip)


@dataclass
class OptimConfig:
    lr: float = 1e-4  # BAGEL ports (LoRA and full)
    min_lr: float = 1e-6
    warmup_steps: int = 0
    schedule: Literal["constant", "cosine"] = "constant"
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 1e-4
    grad_clip: float = 1.0

    def validate(self) -> None:
        if self.lr <= 0 or not 0 <= self.min_lr <= self.lr or len(self.betas) != 2:
            raise ConfigError(f"need optim.lr > 0, 0 <= min_lr <= lr and two betas (got {self})")


@dataclass
class ParallelConfig:
    activation_checkpointing: bool = True  # recompute each decoder layer in backward (G x 3 x 1026 tokens)
    reduce_dtype: DType = "float32"  # full mode: gradient reduce-scatter dtype


@dataclass
class TrainConfig:
    total_steps: int = 500  # iterations (rollout + update)
    updates_per_step: int = 2  # optimizer steps per iteration (flow_grpo: 2; 1 = purely on-policy)
    inner_epochs: int = 1
    seed: int = 4396
    ema_decay: float | None = None  # EMA of the trained weights for evaluation/export; None: off (BAGEL ports)
    max_consecutive_bad_steps: int = 10
    device: Literal["auto", "cuda", "cpu"] = "auto"

    def validate(self) -> None:
        if self.total_steps < 1 or self.updates_per_step < 1 or self.inner_epochs < 1:
            raise ConfigError("train.total_steps, train.updates_per_step and train.inner_epochs must be >= 1")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in [0, 1) or null, got {self.ema_decay}")


@dataclass
class RewardConfig:
    kind: str = "programmatic"  # programmatic | cec | shapes_exact | mix (train/rl/rewards/registry.py)
    settings: dict[str, Any] = field(default_factory=dict)  # passed to the reward's build(settings)
    server: RewardServerConfig = field(default_factory=RewardServerConfig)  # train/rl/rewards/server.py


@dataclass
class CheckpointConfig:
    every: int = 50
    keep_last: int = 3
    resume: bool = True
    export_every: int = 0  # iterations between exports (0: only at the end)
    export_dtype: DType = "bfloat16"

    def validate(self) -> None:
        if self.every < 1 or self.keep_last < 1 or self.export_every < 0:
            raise ConfigError("checkpoint.every, checkpoint.keep_last >= 1 and checkpoint.export_every >= 0")


@dataclass
class LoggingConfig:
    every: int = 1
    image_every: int = 20  # iterations between image grids of a group (0: never)
    tensorboard: bool = True
    wandb_project: str | None = None
    run_name: str = "grpo"


@dataclass
class RLConfig:
    output_dir: str = "runs/rl"
    model: ModelConfig = field(default_factory=ModelConfig)
    trainable: TrainableConfig = field(default_factory=TrainableConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def validate(self) -> None:
        if self.rollout.prompts_per_rank % self.train.updates_per_step:
            raise ConfigError(f"rollout.prompts_per_rank ({self.rollout.prompts_per_rank}) must be a multiple of "
                              f"train.updates_per_step ({self.train.updates_per_step})")
