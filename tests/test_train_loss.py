"""The SFT objective: token means over all ranks and micro-batches, optional CE length weights, group sums."""

from __future__ import annotations

import pytest
import torch

from train.sft.loss import loss_sums, micro_batch_loss

g = torch.Generator().manual_seed(0)
CE = [torch.rand(n, generator=g) for n in (5, 0, 7, 3)]  # per micro-batch; ranks: [0, 1] and [2, 3]
MSE = [torch.rand(n, 4, generator=g) for n in (2, 6, 0, 9)]
W = [torch.rand(n, generator=g) for n in (5, 0, 7, 3)]


def test_rank_averaged_micro_losses_equal_the_global_token_means() -> None:
    n_ce, n_mse = sum(len(c) for c in CE), sum(len(m) for m in MSE)
    per_rank = [sum(micro_batch_loss(CE[i], MSE[i], global_ce_tokens=n_ce, global_mse_tokens=n_mse, ce_weight=0.5,
                                     mse_weight=2.0, world_size=2) for i in micro) for micro in ((0, 1), (2, 3))]
    expected = 0.5 * torch.cat(CE).mean() + 2.0 * torch.cat(MSE).mean()
    assert (per_rank[0] + per_rank[1]) / 2 == pytest.approx(float(expected), rel=1e-6)  # FSDP averages ranks


def test_ce_length_weights_give_the_weighted_mean() -> None:
    total = float(torch.cat(W).sum())
    loss = sum(micro_batch_loss(CE[i], MSE[i][:0], global_ce_tokens=total, global_mse_tokens=0, ce_weight=1.0,
                                mse_weight=1.0, world_size=1, ce_token_weights=W[i]) for i in range(4))
    assert float(loss) == pytest.approx(float((torch.cat(CE) * torch.cat(W)).sum() / total), rel=1e-6)


def test_group_sums_follow_each_token_to_its_dataset() -> None:
    batch = {"dataset_name": ["a", "b", "a"], "packed_sample_ids": torch.tensor([0, 0, 1, 1, 1, 2, 2]),
             "ce_loss_indexes": torch.tensor([1, 2, 5]), "mse_loss_indexes": torch.tensor([3, 6])}
    ce, mse = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([[1.0, 3.0], [5.0, 7.0]])
    sums = loss_sums(ce, mse, batch)
    assert sums.groups["a"] == [5.0, 2.0, 6.0, 1.0] and sums.groups["b"] == [2.0, 1.0, 2.0, 1.0]
    assert sums.totals == [7.0, 3.0, 8.0, 2.0]
