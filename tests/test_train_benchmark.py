"""The training benchmark's two modes run on CPU with the tiny config (the GPU figures come from the device)."""

from __future__ import annotations

import math

import pytest
import torch

from data.packing import SpecialTokens
from modeling.bagel.config import load_config
from train.common.distributed import init_distributed
from train.common.flops import ModelWidths, training_flops
from train.sft.benchmark import run_benchmark
from train.sft.synthetic_data import SyntheticEditConfig, synthetic_edit_batch

from tests.fixture_paths import TINY



@pytest.mark.parametrize("mode", ["original", "trainer"])
def test_benchmark_modes_run_on_cpu(mode: str) -> None:
    torch.set_num_threads(1)
    info = init_distributed("cpu")
    config = load_config(TINY)
    batch = synthetic_edit_batch(SyntheticEditConfig(samples_per_batch=2, text_tokens=24, vit_side=42, vae_side=48,
                                                     vocab_limit=480), SpecialTokens(481, 482, 483, 484), 0)
    result = run_benchmark(config, batch, mode, info.device, steps=2, warmup=1, activation_checkpointing=True)
    assert result.skipped_steps == 0 and result.seconds_per_step > 0 and result.mfu is None
    assert result.tokens == batch["sequence_length"]
    assert math.isclose(result.tflop_per_step * 1e12, training_flops(batch, ModelWidths.from_bagel_config(config)))
