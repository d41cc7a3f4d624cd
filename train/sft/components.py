"""What the SFT loop trains: a model, its frozen image encoder, a resumable batch stream, and an exporter.

``build.py`` makes these from the official BAGEL folder and a dataset mix; tests hand in tiny stand-ins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

import torch
from torch import nn

from train.common.flops import ModelWidths


class BatchStream(Protocol):
    """An endless iterator of packed batch dicts whose position can be saved and restored exactly."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> None: ...


@dataclass
class TrainComponents:
    model: nn.Module  # ``forward_train(batch)`` returns an object with unreduced ``.ce`` [n_ce] and ``.mse`` [n_mse, C]
    data: BatchStream
    block_lists: tuple[str, ...]  # ModuleLists whose items become FSDP units / checkpointed blocks
    # Allocates and fills the weights of a model built on the meta device, after sharding (None: already real).
    materialize: Callable[[nn.Module, torch.device], None] | None = None
    encode_images: Callable[[torch.Tensor], torch.Tensor] | None = None  # frozen VAE: padded_images -> padded_latent
    widths: ModelWidths | None = None  # for MFU; None: not reported
    # Rank 0 only: write the official folder layout from a full state dict (module names) into a directory.
    export: Callable[[dict[str, torch.Tensor], str], None] | None = None
    # Rank 0 only: edit the validation prompts with a full state dict, write them under a directory, return the grid.
    validate: Callable[[dict[str, torch.Tensor], str], Any] | None = None
