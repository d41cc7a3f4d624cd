"""Key/value caches of inference contexts, and packing several contexts into one attention call.

A context (one conversation, or one CFG branch) keeps per layer a preallocated key/value store, the number of cached
tokens and its next RoPE position. A new block's keys are written in place into the free slots after ``length``;
the block is committed by advancing ``length`` (a velocity query is not committed, so its slots are scratch).
``fork`` copies a context, so branches never write into each other's storage.

``pack_contexts`` lays several contexts out as ``[cache_0, slots_0, cache_1, slots_1, ...]`` for one batched call
(the CFG branches of a denoising step); the packed store is built once and reused for every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .attention import AttentionLayout

# A decode step attends over the whole fixed-size store; an unaligned row count made cuBLAS fall back to a kernel
# ~5x slower for the probabilities x values product (H200), so forked stores have a multiple of 64 rows.
STORE_ROWS_MULTIPLE = 64


@dataclass
class LayerKV:
    keys: torch.Tensor  # [L, Hkv, D]
    values: torch.Tensor  # [L, Hkv, D]


class KVCache:
    def __init__(self, num_layers: int, kv_shape: tuple[int, int], dtype: torch.dtype, device: torch.device | str,
                 capacity: int = 256):
        self.num_layers, self.kv_shape, self.dtype, self.device = num_layers, kv_shape, dtype, torch.device(device)
        self.layers = [self._empty(capacity) for _ in range(num_layers)]
        self.length = 0  # cached tokens
        self.next_position = 0  # RoPE position of the next block

    def _empty(self, capacity: int) -> LayerKV:
        # zeros, not empty: a fixed-size store is attended with a key mask, and masked slots must hold finite values
        shape = (capacity, *self.kv_shape)
        return LayerKV(torch.zeros(shape, dtype=self.dtype, device=self.device),
                       torch.zeros(shape, dtype=self.dtype, device=self.device))

    @property
    def capacity(self) -> int:
        return self.layers[0].keys.shape[0]

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` more tokens (grows geometrically, copying the cached part once)."""
        need = self.length + extra
        if need <= self.capacity:
            return
        grown = []
        for kv in self.layers:
            new = self._empty(max(need, 2 * self.capacity))
            new.keys[: self.length] = kv.keys[: self.length]
            new.values[: self.length] = kv.values[: self.length]
            grown.append(new)
        self.layers = grown

    def with_slots(self, extra: int) -> tuple[list[LayerKV], torch.Tensor]:
        """Views [0, length + extra) of every layer's store and the slot indexes [extra] of the new block."""
        self.reserve(extra)
        end = self.length + extra
        views = [LayerKV(kv.keys[:end], kv.values[:end]) for kv in self.layers]
        return views, torch.arange(self.length, end, device=self.device)

    def commit(self, tokens: int, positions: int) -> None:
        self.length += tokens
        self.next_position += positions

    def fork(self, extra_capacity: int = 256) -> "KVCache":
        """An independent copy (a CFG branch, or a scratch context for decoding) with room for at least
        ``extra_capacity`` more tokens."""
        capacity = -(-(self.length + extra_capacity) // STORE_ROWS_MULTIPLE) * STORE_ROWS_MULTIPLE
        out = KVCache(self.num_layers, self.kv_shape, self.dtype, self.device, capacity)
        for src, dst in zip(self.layers, out.layers):
            dst.keys[: self.length] = src.keys[: self.length]
            dst.values[: self.length] = src.values[: self.length]
        out.length, out.next_position = self.length, self.next_position
        return out


@dataclass
class PackedContexts:
    buffers: list[LayerKV]  # per layer [sum(cache + query), Hkv, D]
    insert_idx: torch.Tensor  # [sum(query)] slots of the new keys
    layout: AttentionLayout


def pack_contexts(caches: list[KVCache], query_lens: list[int], causal: bool) -> PackedContexts:
    """A packed store holding each context's cache followed by free slots for its new block."""
    layout = AttentionLayout.for_cached_queries([c.length for c in caches], query_lens, causal, caches[0].device)
    buffers = []
    for i in range(caches[0].num_layers):
        keys, values = [], []
        for c, q in zip(caches, query_lens):
            keys += [c.layers[i].keys[: c.length], c.layers[i].keys.new_empty((q, *c.kv_shape))]
            values += [c.layers[i].values[: c.length], c.layers[i].values.new_empty((q, *c.kv_shape))]
        buffers.append(LayerKV(torch.cat(keys), torch.cat(values)))
    return PackedContexts(buffers, layout.q_to_k, layout)
