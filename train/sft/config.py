"""The SFT run config (YAML under ``configs/sft/`` + dotted overrides, see ``train.common.config``).

Defaults are BAGEL's published fine-tuning values (shared/docs/bagel_recipe.md) where the Meta-CoT paper is silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from train.common.config import ConfigError
from train.sft.init_from_components import ComponentsConfig
from train.sft.synthetic_data import SyntheticEditConfig
from train.sft.validation import ValidationConfig

DType = Literal["float32", "bfloat16"]


@dataclass
class ModelConfig:
    # Exactly one source of initial weights: the official BAGEL folder (its EMA weights, as BAGEL fine-tunes),
    # Qwen2.5 + SigLIP + FLUX AE (from scratch), or random weights at the shape of a configs JSON (benchmarks, tests).
    model_dir: str | None = None
    components: ComponentsConfig | None = None
    random_init_configs: str | None = None
    llm_layers: int | None = None  # random init only: cut the LLM to this many decoder layers
    vit_layers: int | None = None  # random init only: ViT layers actually built
    freeze_und: bool = False       # understanding expert (LLM weights without 'moe_gen', embeddings, lm_head)
    freeze_gen: bool = False       # generation expert ('moe_gen' weights, vae2llm, llm2vae, time embedder)
    freeze_vit: bool = False       # SigLIP encoder
    freeze_connector: bool = False  # connector MLP and ViT position embedding
    vae_dtype: DType = "bfloat16"  # the AE is always frozen; it encodes targets under no_grad in this dtype
    # attention kernels (modeling/bagel/attention.py); auto: compiled flex_attention for packed masks on CUDA at
    # head_dim >= 64, SDPA elsewhere
    attn_backend: Literal["auto", "flash", "flex", "sdpa"] = "auto"

    def validate(self) -> None:
        if sum(x is not None for x in (self.model_dir, self.components, self.random_init_configs)) != 1:
            raise ConfigError("set exactly one of model.model_dir (official BAGEL folder), model.components "
                              "(llm_dir, vit_dir, ae_path) or model.random_init_configs (configs JSON, random weights)")
        if self.random_init_configs is None and (self.llm_layers or self.vit_layers):
            raise ConfigError("model.llm_layers / model.vit_layers only apply to random init; unset them")


@dataclass
class DataConfig:
    source: Literal["mix", "synthetic_edit"] = "mix"  # synthetic_edit: the fixed benchmark workload, no files
    mix: str = ""                  # dataset mix YAML (data/configs/*.yaml)
    num_workers: int = 2           # dataloader worker processes per rank
    synthetic: SyntheticEditConfig = field(default_factory=SyntheticEditConfig)

    def validate(self) -> None:
        if self.source == "mix" and not self.mix:
            raise ConfigError("data.mix is empty; point it at a dataset mix YAML, e.g. data/configs/meta_cot_sft.yaml")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {self.num_workers}")


@dataclass
class OptimConfig:
    lr: float = 2e-5               # BAGEL fine-tuning example
    min_lr: float = 1e-7
    warmup_steps: int = 2000
    schedule: Literal["constant", "cosine"] = "constant"
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-15
    weight_decay: float = 0.0
    grad_clip: float = 1.0         # <= 0: no clipping (the norm is still logged)

    def validate(self) -> None:
        if self.lr <= 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise ConfigError(f"need 0 <= optim.min_lr <= optim.lr and lr > 0, got lr={self.lr} min_lr={self.min_lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        if self.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")


@dataclass
class LossConfig:
    ce_weight: float = 1.0
    mse_weight: float = 1.0
    # BAGEL's ce_loss_reweighting (off by default there): weight CE tokens by the batch's ce_loss_weights
    # (1/sqrt(length) per text segment) and normalise by their global sum instead of the token count.
    ce_reweighting: bool = False


@dataclass
class ParallelConfig:
    param_dtype: DType = "bfloat16"    # compute dtype; master weights and optimizer states stay float32
    reduce_dtype: DType = "float32"
    activation_checkpointing: bool = True
    ac_every: int = 1                  # checkpoint every k-th block
    compile_blocks: bool = False
    shard_group_size: int = 0          # 0: shard over all ranks; 8: BAGEL's HYBRID_SHARD (shard in 8, replicate)

    def validate(self) -> None:
        if self.ac_every < 1:
            raise ConfigError(f"parallel.ac_every must be >= 1, got {self.ac_every}")


@dataclass
class TrainConfig:
    total_steps: int = 10000
    grad_accum_steps: int = 1
    seed: int = 4396                   # BAGEL's global seed; rank r uses seed + r
    ema_decay: float = 0.9999
    ema_warmup: bool = False       # decay min(ema_decay, (1+n)/(10+n)) at update n: for runs from random weights
    max_consecutive_bad_steps: int = 10
    device: Literal["auto", "cuda", "cpu"] = "auto"

    def validate(self) -> None:
        if self.total_steps < 1 or self.grad_accum_steps < 1 or self.max_consecutive_bad_steps < 1:
            raise ConfigError("train.total_steps, train.grad_accum_steps and train.max_consecutive_bad_steps "
                              "must be >= 1")


@dataclass
class CheckpointConfig:
    every: int = 2000                  # steps between resumable checkpoints
    keep_last: int = 3
    resume: bool = True                # continue from the newest complete checkpoint under <output_dir>/checkpoints
    restart_data_stream: bool = False  # resume on another world size: load weights/optimizer/EMA, fresh data stream
    export_every: int = 0              # steps between exports of the EMA weights (0: only at the end)
    export_dtype: DType = "bfloat16"

    def validate(self) -> None:
        if self.every < 1 or self.keep_last < 1 or self.export_every < 0:
            raise ConfigError("checkpoint.every and checkpoint.keep_last must be >= 1, checkpoint.export_every >= 0")


@dataclass
class LoggingConfig:
    every: int = 10
    tensorboard: bool = True           # used when the tensorboard package is installed
    wandb_project: str | None = None   # e.g. 'bagel' (BAGEL's); None = off
    run_name: str = "sft"

    def validate(self) -> None:
        if self.every < 1:
            raise ConfigError(f"logging.every must be >= 1, got {self.every}")


@dataclass
class SFTConfig:
    output_dir: str = "runs/sft"       # checkpoints/, logs/ and export/ go here
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
