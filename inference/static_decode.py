"""Text decoding with fixed shapes, so one step can be captured once as a CUDA graph and replayed per token.

The context's key/value store is used at its full capacity; a boolean ``key_valid`` vector (updated in place) says
which slots hold keys. Token, position and slot are static input tensors; the logits a static output. Without CUDA
(or with ``use_graph=False``) the same static step runs eagerly, which tests compare with the dynamic path.
"""

from __future__ import annotations

import torch

from modeling.bagel.attention import AttentionLayout
from modeling.bagel.kv_cache import KVCache
from modeling.bagel.model import Bagel


class StaticDecoder:
    def __init__(self, model: Bagel, cache: KVCache, use_graph: bool | None = None, compiled: bool = False):
        """``cache`` must have capacity for every token to decode; it is extended in place as tokens are fed.
        ``compiled``: run the step through the model's torch.compile'd decoder layers."""
        self.model, self.cache = model, cache
        self.layers = model.compiled_decoder_layers() if compiled else None
        device = cache.device
        self.use_graph = device.type == "cuda" if use_graph is None else use_graph
        self.token = torch.zeros(1, dtype=torch.long, device=device)
        self.position = torch.zeros(1, dtype=torch.long, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.key_valid = torch.zeros(cache.capacity, dtype=torch.bool, device=device)
        self.key_valid[: cache.length] = True
        self.layout = AttentionLayout.for_static_store(self.key_valid, 1)
        self.logits: torch.Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None

    @torch.no_grad()
    def _step(self) -> torch.Tensor:
        model = self.model
        embeds = model.embed_text(self.token).to(model.compute_dtype)
        hidden = model.language_model.model(embeds, self.position, self.layout, None, self.cache.layers, self.slot,
                                            self.layers)
        return model.language_model.lm_head(hidden)

    def _capture(self) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up outside the graph (allocator, kernel selection)
            for _ in range(2):
                self._step()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._step()

    @torch.no_grad()
    def feed(self, token: torch.Tensor) -> torch.Tensor:
        """Feed one token [1] at the next position -> logits [1, vocab]."""
        cache = self.cache
        if cache.length >= cache.capacity:
            raise ValueError(f"the decode store is full ({cache.capacity} tokens); fork the context with more room")
        self.token.copy_(token.reshape(1))
        self.position.fill_(cache.next_position)
        self.slot.fill_(cache.length)
        self.key_valid[cache.length] = True  # the new token sees itself
        if not self.use_graph:
            logits = self._step()
        else:
            if self.graph is None:
                self._capture()  # the warm-up steps wrote this token's keys too: same values, same slot
            self.graph.replay()
            logits = self.logits.clone()  # the graph's output buffer is overwritten by the next replay
        cache.commit(1, 1)
        return logits
