"""Packed attention: the mask rule, and agreement of the backends that run on this machine."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from modeling.bagel.attention import AttentionLayout, packed_attention

from tests.attention_reference import dense_attention_reference
from tests.fixture_paths import TINY


def test_mask_rule_reproduces_official_training_masks():
    case_dir = TINY / "cases" / "train_forward"
    case = json.loads((case_dir / "case.json").read_text())
    masks = load_file(str(case_dir / "inputs.safetensors"))
    layout = AttentionLayout.from_splits(case["sample_lens"], [n for s in case["split_lens_per_sample"] for n in s],
                                         [m for s in case["attn_modes_per_sample"] for m in s])
    idx = torch.arange(case["sequence_length"])
    visible = layout.visible(idx[:, None], idx[None, :])
    start = 0
    for i, n in enumerate(case["sample_lens"]):
        assert torch.equal(visible[start:start + n, start:start + n], masks[f"attention_mask_sample{i}"] == 0)
        assert not visible[start:start + n, :start].any() and not visible[start:start + n, start + n:].any()
        start += n


LAYOUTS = {
    "training": lambda: AttentionLayout.from_splits([9, 7], [3, 4, 2, 5, 2], ["causal", "noise", "full", "full", "noise"]),
    "cached_full": lambda: AttentionLayout.for_cached_queries([5, 0, 8], [4, 3, 4], causal=False),
    "cached_causal": lambda: AttentionLayout.for_cached_queries([6, 2], [3, 1], causal=True),
    "equal_images": lambda: AttentionLayout.from_splits([6, 6, 6], [6, 6, 6], ["full"] * 3),  # one batched call
}


@pytest.mark.parametrize("kv_heads", [2, 4])  # grouped-query and plain multi-head attention
@pytest.mark.parametrize("backend", ["sdpa", "flex"])
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_backends_agree_withdense_attention_reference(backend, name, kv_heads):
    layout = LAYOUTS[name]()
    gen = torch.Generator().manual_seed(0)
    lk, lq = layout.k_doc.numel(), layout.q_to_k.numel()
    q = torch.randn(lq, 4, 16, generator=gen)
    k, v = torch.randn(lk, kv_heads, 16, generator=gen), torch.randn(lk, kv_heads, 16, generator=gen)
    out = packed_attention(q, k, v, layout, 0.25, backend)
    torch.testing.assert_close(out.double(), dense_attention_reference(q, k, v, layout, 0.25), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["sdpa", "flex"])
def test_fixed_size_store_sees_keys_that_become_valid_after_the_first_call(backend):
    """Decoding into a fixed-size store: validity grows in place, and a layout (with its flex block mask) built
    while few keys were valid must still see every key valid at call time, and none of the rest."""
    capacity, gen = 300, torch.Generator().manual_seed(1)
    key_valid = torch.zeros(capacity, dtype=torch.bool)
    key_valid[:5] = True
    layout = AttentionLayout.for_static_store(key_valid, 1)
    k, v = torch.randn(capacity, 2, 16, generator=gen), torch.randn(capacity, 2, 16, generator=gen)
    for valid in (5, 140, 257):  # crosses flex's 128-key blocks
        key_valid[:valid] = True
        q = torch.randn(1, 4, 16, generator=gen)
        expected = dense_attention_reference(q, k[:valid], v[:valid], AttentionLayout.for_cached_queries([valid - 1], [1], True),
                                    0.25)
        torch.testing.assert_close(packed_attention(q, k, v, layout, 0.25, backend).double(), expected, atol=1e-5,
                                   rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 3])
def test_few_query_rows_over_a_masked_store_match_thedense_attention_reference(dtype, rows):
    """The decoding path (at most SHORT_QUERY_ROWS queries, one key mask shared by all of them) in float64,
    float32 and bfloat16: a bf16 call stays within bf16 rounding of the float64 reference."""
    gen = torch.Generator().manual_seed(rows)
    capacity, valid = 40, 29
    key_valid = torch.zeros(capacity, dtype=torch.bool)
    key_valid[:valid] = True
    q = torch.randn(rows, 6, 16, generator=gen).to(dtype)
    k, v = (torch.randn(capacity, 2, 16, generator=gen).to(dtype) for _ in range(2))
    got = packed_attention(q, k, v, AttentionLayout.for_static_store(key_valid, rows), 0.25, "sdpa")
    full_view = AttentionLayout.for_cached_queries([valid - rows], [rows], causal=False)  # every query sees all keys
    expected = dense_attention_reference(q, k[:valid], v[:valid], full_view, 0.25)
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2e-2}[dtype]
    assert got.dtype == dtype
    torch.testing.assert_close(got.double(), expected, atol=tol, rtol=tol)


def test_noise_split_is_invisible_to_later_tokens():
    layout = AttentionLayout.from_splits([6], [2, 2, 2], ["causal", "noise", "causal"])
    seen = layout.visible(torch.arange(6)[:, None], torch.arange(6)[None, :])
    assert not seen[4:, 2:4].any() and seen[4:, :2].all() and seen[2:4, :4].all()


def test_flash_backend_refuses_what_it_cannot_run():
    layout = LAYOUTS["training"]()
    with pytest.raises(ValueError, match="flash"):
        packed_attention(torch.zeros(16, 4, 16), torch.zeros(16, 2, 16), torch.zeros(16, 2, 16), layout, 0.25, "flash")
