"""Key/value caches of inference contexts, and packing several contexts into one attention call.

A context (one conversation, or one CFG branch) keeps per layer the keys/values of everything prefilled so far and
its next RoPE position. ``pack_contexts`` lays several contexts out as ``[cache_0, slots_0, cache_1, slots_1, ...]``
so that one forward runs a new block for each of them (the CFG branches of a denoising step, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .attention import AttentionLayout


@dataclass
class LayerKV:
    keys: torch.Tensor  # [L, Hkv, D]
    values: torch.Tensor  # [L, Hkv, D]


@dataclass
class KVCache:
    layers: list[LayerKV] = field(default_factory=list)  # empty until the first prefill
    length: int = 0  # cached tokens
    next_position: int = 0  # RoPE position of the next block

    def clone(self) -> "KVCache":
        """A shallow copy: tensors are shared (never modified in place), so forks of a context are cheap."""
        return KVCache(list(self.layers), self.length, self.next_position)

    def extend(self, new: list[LayerKV]) -> None:
        if not self.layers:
            self.layers = list(new)
        else:
            self.layers = [LayerKV(torch.cat([old.keys, n.keys]), torch.cat([old.values, n.values]))
                           for old, n in zip(self.layers, new)]
        self.length += new[0].keys.shape[0]


@dataclass
class PackedContexts:
    buffers: list[LayerKV] | None  # per layer [sum(cache + query), Hkv, D]; None when every cache is empty
    insert_idx: torch.Tensor  # [sum(query)] where each new key goes
    layout: AttentionLayout


def pack_contexts(
    caches: list[KVCache], query_lens: list[int], causal: bool, num_layers: int, kv_shape: tuple[int, int],
    dtype: torch.dtype, device: torch.device,
) -> PackedContexts:
    """Buffers holding each context's cache followed by free slots for its new block."""
    cache_lens = [c.length for c in caches]
    layout = AttentionLayout.for_cached_queries(cache_lens, query_lens, causal, device)
    insert_idx = layout.q_to_k
    if sum(cache_lens) == 0:
        return PackedContexts(None, insert_idx, layout)
    buffers = []
    for i in range(num_layers):
        parts_k, parts_v = [], []
        for c, q in zip(caches, query_lens):
            if c.length:
                parts_k.append(c.layers[i].keys)
                parts_v.append(c.layers[i].values)
            free = torch.empty((q, *kv_shape), dtype=dtype, device=device)
            parts_k.append(free)
            parts_v.append(free)
        buffers.append(LayerKV(torch.cat(parts_k), torch.cat(parts_v)))
    return PackedContexts(buffers, insert_idx, layout)


def split_new_kv(new_kv: list[LayerKV], query_lens: list[int]) -> list[list[LayerKV]]:
    """Per context, the keys/values its block produced (to extend its cache)."""
    per_layer = [(kv.keys.split(query_lens), kv.values.split(query_lens)) for kv in new_kv]
    return [[LayerKV(ks[d], vs[d]) for ks, vs in per_layer] for d in range(len(query_lens))]
