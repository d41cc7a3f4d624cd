"""LR schedule, EMA, NaN guard, FLOP counting and the ViT padding sample, against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from data.packing import BatchPacker, PackingConfig, SpecialTokens
from modeling.bagel.attention import AttentionLayout
from modeling.bagel.loader import load_bagel
from train.common.ema import EMA
from train.common.flops import ModelWidths, attended_pairs, training_flops
from train.common.lr_schedule import lr_at_step
from train.common.nan_guard import NanGuard
from train.sft.synthetic_data import SyntheticEditConfig, synthetic_edit_batch
from train.sft.vit_padding import pad_missing_vit
from tests.fixture_paths import TINY as TINY_PATH

SPECIAL = SpecialTokens(151644, 151645, 151652, 151653)
TINY = str(TINY_PATH)


def test_lr_schedule_warmup_constant_and_cosine() -> None:
    kw = dict(lr=1.0, min_lr=0.1, warmup_steps=4, total_steps=14)
    assert [lr_at_step(s, schedule="constant", **kw) for s in (0, 1, 3, 4, 13)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    cosine = [lr_at_step(s, schedule="cosine", **kw) for s in (4, 9, 14)]
    assert cosine == pytest.approx([1.0, 0.55, 0.1])


def test_ema_follows_the_closed_form() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    ema = EMA({"p": p}, decay=0.5)
    with torch.no_grad():
        p.fill_(3.0)
    ema.update()
    with torch.no_grad():
        p.fill_(5.0)
    ema.update()
    # ((x0 * .5 + 3 * .5) * .5 + 5 * .5)
    assert torch.equal(ema.shadow["p"], torch.tensor([1.0 * 0.25 + 0.75 + 2.5, 2.0 * 0.25 + 0.75 + 2.5]))


def test_nan_guard_counts_consecutive_bad_steps() -> None:
    guard = NanGuard(max_consecutive=2)
    assert guard.check(1.0, 1.0) and not guard.check(math.nan, 1.0) and not guard.should_stop
    assert guard.check(1.0, 2.0) and guard.consecutive == 0
    assert not guard.check(1.0, math.inf) and not guard.check(math.inf, 1.0) and guard.should_stop
    assert guard.skipped_total == 3 and "2 consecutive steps" in guard.stop_message(7)


def test_attended_pairs_equal_the_model_mask() -> None:
    batch = synthetic_edit_batch(SyntheticEditConfig(samples_per_batch=3, text_tokens=20, vit_side=28,
                                                     vae_side=32, vocab_limit=100), SPECIAL, 0)
    layout = AttentionLayout.from_splits(batch["sample_lens"], batch["split_lens"], batch["attn_modes"])
    n = batch["sequence_length"]
    mask = layout.visible(torch.arange(n)[:, None], torch.arange(n)[None, :])
    assert attended_pairs(batch["sample_lens"], batch["split_lens"], batch["attn_modes"]) == int(mask.sum())


def test_benchmark_workload_flops_match_the_issue_figure() -> None:
    """The issue's own count for this workload is 221.9 TFLOP per step (7B-MoT widths, 4 LLM layers)."""
    batch = synthetic_edit_batch(SyntheticEditConfig(), SPECIAL, 0)
    assert batch["sequence_length"] == 30896 and len(batch["ce_loss_indexes"]) == 8 * 255
    widths = ModelWidths(llm_hidden=3584, llm_intermediate=18944, llm_kv_width=512, llm_layers=4, vocab=152064,
                         vit_hidden=1152, vit_intermediate=4304, vit_layers=26)
    assert training_flops(batch, widths) / 1e12 == pytest.approx(221.9, rel=2e-3)


def test_vit_padding_changes_no_loss_and_gives_zero_vit_gradient() -> None:
    bundle = load_bagel(TINY)
    special = SpecialTokens(*(getattr(bundle.special_tokens, k) for k in ("bos", "eos", "start_of_image",
                                                                         "end_of_image")))
    from data.segments import PackableSample, TextSegment, VaeImageSegment
    packer = BatchPacker(special, PackingConfig(vit_max_num_patch_per_side=16, max_latent_size=16),
                         np.random.default_rng(0))
    packer.add(PackableSample([TextSegment([5, 6, 7]), VaeImageSegment(torch.zeros(3, 32, 32), noised=True),
                               TextSegment([8, 9], loss=True)], dataset_name="t2i"))
    batch = packer.build()
    batch["padded_latent"] = bundle.vae.encode(batch.pop("padded_images"), sample=False)
    batch["noise"] = torch.randn(len(batch["packed_vae_token_indexes"]), 64, generator=torch.Generator().manual_seed(0))
    padded = pad_missing_vit(batch, 588, special.start_of_image, special.end_of_image)
    assert padded["sequence_length"] == batch["sequence_length"] + 3 and padded["vit_token_seqlens"].tolist() == [1]
    plain, with_pad = bundle.model.forward_train(batch), bundle.model.forward_train(padded)
    torch.testing.assert_close(with_pad.ce, plain.ce, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(with_pad.mse, plain.mse, rtol=1e-5, atol=1e-6)
    (with_pad.ce.sum() + with_pad.mse.sum()).backward()
    vit_grads = [p.grad for p in bundle.model.vit_model.parameters() if p.requires_grad]
    assert vit_grads and all(g is not None and not g.any() for g in vit_grads)


def test_ema_warmup_follows_its_closed_form_and_resumes_exactly() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    ema = EMA({"p": p}, decay=0.99, warmup=True)
    expected = 0.0
    for n, value in enumerate([4.0, 8.0, 2.0]):
        with torch.no_grad():
            p.fill_(value)
        ema.update()
        decay = min(0.99, (1 + n) / (10 + n))  # 0.1, 2/11, 3/12: the start weighs little
        expected = decay * expected + (1 - decay) * value
        assert ema.shadow["p"].item() == pytest.approx(expected, rel=1e-6)
    resumed = EMA({"p": p}, decay=0.99, warmup=True)
    resumed.load_state_dict(ema.state_dict())
    assert int(resumed.updates) == 3 and resumed.current_decay() == pytest.approx(4 / 13)
    assert "__ema_updates__" not in EMA({"p": p}, decay=0.99).state_dict()  # no warm-up: BAGEL's layout
