"""The SFT objective: ``ce_weight * CE + mse_weight * MSE`` as token means over all ranks and micro-batches.

CE is summed over a rank's CE tokens and MSE (mean over the 64 latent channels per token) over its MSE tokens; both
are divided by the *global* token counts of the whole optimizer step, then multiplied by the world size because
FSDP averages gradients over ranks. The gradient is therefore the exact token mean over everything the step saw,
independent of how tokens fall on ranks and micro-batches (BAGEL's normalisation, extended to accumulation).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch


@dataclass
class LossSums:
    """Detached sums for logging, overall and per dataset group: [ce_sum, ce_tokens, mse_sum, mse_tokens]."""

    totals: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    groups: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0, 0.0, 0.0]))

    def add(self, other: "LossSums") -> None:
        self.totals = [a + b for a, b in zip(self.totals, other.totals)]
        for name, values in other.groups.items():
            self.groups[name] = [a + b for a, b in zip(self.groups[name], values)]


def micro_batch_loss(ce: torch.Tensor, mse: torch.Tensor, *, global_ce_tokens: float, global_mse_tokens: float,
                     ce_weight: float, mse_weight: float, world_size: int,
                     ce_token_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Loss to backpropagate for one micro-batch (``ce`` [n_ce], ``mse`` [n_mse, C], both unreduced).

    With ``ce_token_weights`` (BAGEL's optional length reweighting) CE is a weighted sum and ``global_ce_tokens``
    must be the global sum of those weights."""
    loss = ce.new_zeros((), dtype=torch.float32)
    if global_ce_tokens > 0:
        ce = ce.float() if ce_token_weights is None else ce.float() * ce_token_weights.to(ce.device)
        loss = loss + ce_weight * ce.sum() * (world_size / global_ce_tokens)
    if global_mse_tokens > 0:
        loss = loss + mse_weight * mse.float().mean(-1).sum() * (world_size / global_mse_tokens)
    return loss


def loss_sums(ce: torch.Tensor, mse: torch.Tensor, batch: dict) -> LossSums:
    """Per-group sums, mapping each loss token to its sample (``packed_sample_ids``) and the sample's dataset."""
    ce_tok = ce.detach().float()
    mse_tok = mse.detach().float().mean(-1)
    names = batch.get("dataset_name")
    sample_ids = batch.get("packed_sample_ids")
    if names is None or sample_ids is None:
        names, sample_ids = ["all"], None
    per_sample = ce_tok.new_zeros(4, len(names))  # rows: ce_sum, ce_n, mse_sum, mse_n; one sync below
    for row, (values, key) in enumerate(((ce_tok, "ce_loss_indexes"), (mse_tok, "mse_loss_indexes"))):
        owners = (sample_ids.to(values.device)[batch[key].to(values.device)] if sample_ids is not None
                  else torch.zeros(values.numel(), dtype=torch.long, device=values.device))
        per_sample[2 * row].index_add_(0, owners, values)
        per_sample[2 * row + 1].index_add_(0, owners, torch.ones_like(values))
    table = per_sample.tolist()
    sums = LossSums()
    for sample, name in enumerate(names):
        column = [table[r][sample] for r in range(4)]
        sums.groups[name] = [a + b for a, b in zip(sums.groups[name], column)]
        sums.totals = [a + b for a, b in zip(sums.totals, column)]
    return sums
