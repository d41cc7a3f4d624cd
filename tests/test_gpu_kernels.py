"""GPU-only attention paths (skipped without CUDA; run on the device): decoding into a fixed-size store, and
compiled flex_attention for packed training masks, each against a plain reference on the same inputs."""

from __future__ import annotations

import pytest
import torch

from modeling.bagel.attention import AttentionLayout, packed_attention, resolve_backend

from tests.attention_reference import dense_attention_reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("valid", [1, 200, 9_000])
def test_decoding_into_a_fixed_size_store_equals_attention_over_its_valid_keys(dtype, valid):
    gen = torch.Generator(device="cuda").manual_seed(valid)
    capacity, hq, hkv, d = 9_600, 28, 4, 128
    k, v = (torch.randn(capacity, hkv, d, generator=gen, device="cuda", dtype=dtype) for _ in range(2))
    q = torch.randn(1, hq, d, generator=gen, device="cuda", dtype=dtype)
    key_valid = torch.zeros(capacity, dtype=torch.bool, device="cuda")
    key_valid[:valid] = True
    layout = AttentionLayout.for_static_store(key_valid, 1)
    got = packed_attention(q, k, v, layout, d ** -0.5, "auto")
    # reproducible: greedy decoding must not change from run to run
    assert torch.equal(packed_attention(q, k, v, layout, d ** -0.5, "auto"), got)
    expected = dense_attention_reference(q.cpu(), k[:valid].cpu(), v[:valid].cpu(),
                                         AttentionLayout.for_cached_queries([valid - 1], [1], True), d ** -0.5)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(got.double().cpu(), expected, atol=tol, rtol=tol)


def test_compiled_flex_training_mask_equals_sdpa():
    layout = AttentionLayout.from_splits([700, 500], [200, 300, 200, 250, 250], ["causal", "full", "noise", "causal",
                                                                                 "noise"], "cuda")
    gen = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1200, 28, 128, generator=gen, device="cuda", requires_grad=True)
    k, v = (torch.randn(1200, 4, 128, generator=gen, device="cuda", requires_grad=True) for _ in range(2))
    assert resolve_backend("auto", layout, q.device, 128) == "flex"
    grads = []
    for backend in ("flex", "sdpa"):
        out = packed_attention(q, k, v, layout, 128 ** -0.5, backend)
        grads.append((out, *torch.autograd.grad(out.square().sum(), (q, k, v))))
    for got, expected in zip(*grads):
        torch.testing.assert_close(got, expected, atol=2e-4, rtol=2e-4)
