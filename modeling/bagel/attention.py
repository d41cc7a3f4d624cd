"""Packed attention: one entry point, three backends (flash-attn varlen, torch flex_attention, plain SDPA).

A packed call attends queries ``q [Lq, Hq, D]`` to keys ``k, v [Lk, Hkv, D]``. Tokens are grouped into documents
(training samples, or one context per CFG branch at inference); a document's tokens are contiguous in both q and k.
Inside a document, key tokens belong to *splits* (segments) with a mode:

- ``causal``: a query sees its own split causally and every earlier split;
- ``full``: a query sees its whole split and every earlier split;
- ``noise``: like ``full``, but no token outside the split may see it (noised latents must not leak).

Every query is also a key (its own key is at ``q_to_k[i]``), so one rule covers training (q == k) and cached
inference (keys = cache + the new block). With the causal diagonal aligned to the end of the document this is the
official model's convention.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

MODES = ("causal", "full", "noise")
SHORT_QUERY_ROWS = 4  # query blocks up to this length take _few_query_attention
BACKENDS = ("auto", "flash", "flex", "sdpa")
# Compiled flex_attention once failed to lower the tiny model's head_dim 16 in fp32 (torch 2.11, Inductor
# NoValidChoicesError); real models have head_dim 128.
FLEX_MIN_HEAD_DIM = 64
FLEX_BLOCK = 128  # flex_attention's default block size


@dataclass
class AttentionLayout:
    k_doc: torch.Tensor  # [Lk] int64 document id of each key
    k_split: torch.Tensor  # [Lk] int64 split id, increasing inside a document
    k_causal: torch.Tensor  # [Lk] bool: the key's split is causal
    k_noise: torch.Tensor  # [Lk] bool: the key's split is a noise split
    q_to_k: torch.Tensor  # [Lq] int64 index of each query's own key
    cu_q: torch.Tensor  # [n_docs + 1] int32 cumulative query lengths
    cu_k: torch.Tensor  # [n_docs + 1] int32 cumulative key lengths
    max_q: int
    max_k: int
    # "causal" / "full" when every document is one query split on top of visible earlier keys (flash-attn can run it).
    uniform_mode: str | None
    q_bounds: tuple[int, ...] = ()  # cu_q as Python ints (no device sync per layer)
    k_bounds: tuple[int, ...] = ()
    # [Lk] bool, only for one document whose queries see exactly the valid keys: a fixed-size store that a
    # CUDA graph can replay (decoding), where validity grows in place instead of the shapes.
    key_valid: torch.Tensor | None = None
    # flex_attention's BlockMask, built on first use and shared by every layer of a forward (see flex_block_mask)
    _block_mask: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.q_bounds:
            self.q_bounds, self.k_bounds = tuple(self.cu_q.tolist()), tuple(self.cu_k.tolist())

    @property
    def num_docs(self) -> int:
        return self.cu_q.numel() - 1

    def to(self, device: torch.device | str) -> "AttentionLayout":
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return AttentionLayout(**{**moved, "_block_mask": None})

    @classmethod
    def from_splits(
        cls, sample_lens: list[int], split_lens: list[int], attn_modes: list[str], device: torch.device | str = "cpu"
    ) -> "AttentionLayout":
        """Self-attention over a packed training sequence (q == k). ``split_lens``/``attn_modes`` are flattened."""
        if sum(split_lens) != sum(sample_lens):
            raise ValueError(f"split lengths sum to {sum(split_lens)} but sample lengths to {sum(sample_lens)}")
        bad = [m for m in attn_modes if m not in MODES]
        if bad:
            raise ValueError(f"unknown attention mode(s) {bad}; expected {MODES}")
        split_sizes = torch.tensor(split_lens, dtype=torch.long)
        split_doc, doc, filled = [], 0, 0
        for n in split_lens:
            while filled >= sample_lens[doc]:
                doc, filled = doc + 1, 0
            split_doc.append(doc)
            filled += n
        k_split = torch.repeat_interleave(torch.arange(len(split_lens)), split_sizes)
        k_doc = torch.repeat_interleave(torch.tensor(split_doc, dtype=torch.long), split_sizes)
        modes = list(attn_modes)
        k_causal = torch.repeat_interleave(torch.tensor([m == "causal" for m in modes]), split_sizes)
        k_noise = torch.repeat_interleave(torch.tensor([m == "noise" for m in modes]), split_sizes)
        cu = F.pad(torch.tensor(sample_lens, dtype=torch.int32).cumsum(0, dtype=torch.int32), (1, 0))
        single_split = len(split_lens) == len(sample_lens) and len(set(modes)) == 1
        uniform = ("causal" if modes[0] == "causal" else "full") if single_split else None
        length = sum(sample_lens)
        return cls(k_doc, k_split, k_causal, k_noise, torch.arange(length), cu, cu.clone(), max(sample_lens),
                   max(sample_lens), uniform).to(device)

    @classmethod
    def for_static_store(cls, key_valid: torch.Tensor, num_queries: int) -> "AttentionLayout":
        """Queries that see every key marked valid in a fixed-size store (``key_valid`` is updated in place)."""
        capacity, device = key_valid.numel(), key_valid.device
        zeros = torch.zeros(capacity, dtype=torch.long, device=device)
        false = torch.zeros(capacity, dtype=torch.bool, device=device)
        cu_q = torch.tensor([0, num_queries], dtype=torch.int32, device=device)
        cu_k = torch.tensor([0, capacity], dtype=torch.int32, device=device)
        return cls(zeros, zeros, false, false, torch.zeros(num_queries, dtype=torch.long, device=device), cu_q, cu_k,
                   num_queries, capacity, None, (0, num_queries), (0, capacity), key_valid)

    @classmethod
    def for_cached_queries(
        cls, cache_lens: list[int], query_lens: list[int], causal: bool, device: torch.device | str = "cpu"
    ) -> "AttentionLayout":
        """One new block per document on top of its cache. Keys are laid out [cache_0, block_0, cache_1, ...]."""
        key_lens = [c + q for c, q in zip(cache_lens, query_lens)]
        k_doc = torch.repeat_interleave(torch.arange(len(key_lens)), torch.tensor(key_lens))
        k_split = torch.cat([torch.cat([torch.zeros(c, dtype=torch.long), torch.ones(q, dtype=torch.long)])
                             for c, q in zip(cache_lens, query_lens)])
        k_causal = (k_split == 1) & causal
        starts = F.pad(torch.tensor(key_lens).cumsum(0), (1, 0))[:-1]
        q_to_k = torch.cat([s + c + torch.arange(q) for s, c, q in zip(starts.tolist(), cache_lens, query_lens)])
        cu_q = F.pad(torch.tensor(query_lens, dtype=torch.int32).cumsum(0, dtype=torch.int32), (1, 0))
        cu_k = F.pad(torch.tensor(key_lens, dtype=torch.int32).cumsum(0, dtype=torch.int32), (1, 0))
        return cls(k_doc, k_split, k_causal, torch.zeros_like(k_causal), q_to_k, cu_q, cu_k, max(query_lens),
                   max(key_lens), "causal" if causal else "full").to(device)

    @classmethod
    def for_group_queries(cls, cache_lens: list[int], query_len: int, group: int,
                          device: torch.device | str = "cpu") -> "AttentionLayout":
        """``group`` blocks of ``query_len`` queries per document that share its cache but never see each other.
        Keys are laid out [cache_0, block_0_0 .. block_0_{G-1}, cache_1, ...]; each block is a ``noise`` split."""
        block = query_len * group
        key_lens = [c + block for c in cache_lens]
        k_doc = torch.repeat_interleave(torch.arange(len(key_lens)), torch.tensor(key_lens))
        member = torch.arange(group).repeat_interleave(query_len) + 1
        k_split = torch.cat([torch.cat([torch.zeros(c, dtype=torch.long), member]) for c in cache_lens])
        k_noise = k_split > 0
        starts = F.pad(torch.tensor(key_lens).cumsum(0), (1, 0))[:-1]
        q_to_k = torch.cat([s + c + torch.arange(block) for s, c in zip(starts.tolist(), cache_lens)])
        cu_q = torch.arange(len(cache_lens) + 1, dtype=torch.int32) * block
        cu_k = F.pad(torch.tensor(key_lens, dtype=torch.int32).cumsum(0, dtype=torch.int32), (1, 0))
        return cls(k_doc, k_split, torch.zeros_like(k_noise), k_noise, q_to_k, cu_q, cu_k, block, max(key_lens),
                   None).to(device)

    def visible(self, q_idx: torch.Tensor, kv_idx: torch.Tensor) -> torch.Tensor:
        """Boolean mask: query ``q_idx`` may attend key ``kv_idx`` (broadcasting index tensors)."""
        if self.key_valid is not None:
            return self.key_valid[kv_idx] & (q_idx >= 0)
        qk = self.q_to_k[q_idx]
        same_doc = self.k_doc[qk] == self.k_doc[kv_idx]
        earlier = (self.k_split[kv_idx] < self.k_split[qk]) & ~self.k_noise[kv_idx]
        same_split = (self.k_split[kv_idx] == self.k_split[qk]) & (~self.k_causal[qk] | (kv_idx <= qk))
        return same_doc & (earlier | same_split)

    def flex_block_mask(self) -> Any:
        """The layout as a flex_attention BlockMask (built once per layout: every layer of a forward reuses it).

        A fixed-size store gets every block marked partial, so keys that become valid later (decoding into the
        store in place) are found by the mask function at run time rather than skipped by a stale block list."""
        if self._block_mask is None:
            from torch.nn.attention.flex_attention import BlockMask, create_block_mask

            lq, lk, device = self.q_to_k.numel(), self.k_doc.numel(), self.k_doc.device
            if self.key_valid is not None:
                key_valid = self.key_valid

                def store_mask(b, h, q_idx, kv_idx):
                    return key_valid[kv_idx] & (q_idx >= 0)

                n_q, n_k = -(-lq // FLEX_BLOCK), -(-lk // FLEX_BLOCK)
                blocks = torch.arange(n_k, dtype=torch.int32, device=device).expand(1, 1, n_q, n_k).contiguous()
                counts = torch.full((1, 1, n_q), n_k, dtype=torch.int32, device=device)
                self._block_mask = BlockMask.from_kv_blocks(counts, blocks, BLOCK_SIZE=FLEX_BLOCK,
                                                            mask_mod=store_mask, seq_lengths=(lq, lk))
            else:
                def mask_mod(b, h, q_idx, kv_idx):
                    return self.visible(q_idx, kv_idx)

                # compiled on CUDA: evaluated block by block instead of materialising the [Lq, Lk] mask
                self._block_mask = create_block_mask(mask_mod, None, None, lq, lk, device=device,
                                                     _compile=device.type == "cuda")
        return self._block_mask


@lru_cache(maxsize=1)
def flash_attn_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()


def resolve_backend(backend: str, layout: AttentionLayout, device: torch.device, head_dim: int) -> str:
    """``auto``: flash-attn for one split per document when installed; on CUDA compiled flex_attention for packed
    training masks, SDPA for the rest and on the CPU. Fixed-size decode stores stay on SDPA: on an H200 its batched
    heads layout decoded 115 tokens/s where flex's decoding kernel gave 45."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; choose one of {BACKENDS}")
    if backend == "flash" and (layout.uniform_mode is None or layout.key_valid is not None
                               or not flash_attn_available()):
        raise ValueError("the flash backend needs flash-attn on CUDA and one split per document; use 'flex' or 'sdpa'")
    if backend != "auto":
        return backend
    if device.type != "cuda" or layout.key_valid is not None:
        return "sdpa"
    if layout.uniform_mode is not None:
        return "flash" if flash_attn_available() else "sdpa"
    return "flex" if head_dim >= FLEX_MIN_HEAD_DIM else "sdpa"


def packed_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: AttentionLayout, scale: float, backend: str = "auto"
) -> torch.Tensor:
    """q [Lq, Hq, D], k/v [Lk, Hkv, D] -> [Lq, Hq, D]. Grouped-query attention when Hq > Hkv."""
    backend = resolve_backend(backend, layout, q.device, q.shape[-1])
    if backend == "flash":
        return _flash(q, k, v, layout, scale)
    if backend == "flex":
        return _flex(q, k, v, layout, scale)
    return _sdpa(q, k, v, layout, scale)


def _doc_mask(layout: AttentionLayout, q0: int, q1: int, k0: int, k1: int, device: torch.device):
    """The mask of one document: None when it sees everything, a lower-right causal bias, or a dense bool mask."""
    lq, lk = q1 - q0, k1 - k0
    if layout.key_valid is not None:
        return layout.key_valid[None, None, None, k0:k1]  # the same keys for every query: broadcasts
    if layout.uniform_mode == "full" or (layout.uniform_mode == "causal" and lq == 1):
        return None
    if layout.uniform_mode == "causal":
        return causal_lower_right(lq, lk)
    q_idx, k_idx = torch.arange(q0, q1, device=device), torch.arange(k0, k1, device=device)
    return layout.visible(q_idx[:, None], k_idx[None, :])


def _fp32_bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [B, M, K] @ b [B, K, N] with (at least) fp32 results. On CUDA, half-precision inputs go to cuBLAS as they
    are with fp32 accumulation and output, so a decode step does not copy the whole key store to fp32 (CPU lacks
    this overload)."""
    if a.is_cuda and a.dtype in (torch.float16, torch.bfloat16):
        return torch.bmm(a, b, out_dtype=torch.float32)
    acc = torch.promote_types(a.dtype, torch.float32)
    return torch.bmm(a.to(acc), b.to(acc))


def _few_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                         key_mask: torch.Tensor | None) -> torch.Tensor:
    """Attention of a few query rows (decoding) as two batched matmuls over the KV heads, no copy of the keys: fp32
    scores and softmax, probabilities in the values' dtype (as fused kernels do), fp32 accumulation. Unlike cuDNN's
    fused kernel (SDPA's first pick on Hopper), whose decode logits changed from run to run on an H200 (torch 2.11),
    cuBLAS batched matmuls give the same output every run, so greedy thinking is reproducible."""
    lq, hq, d = q.shape
    lk, hkv = k.shape[0], k.shape[1]
    g = hq // hkv
    qg = q.reshape(lq, hkv, g, d).permute(1, 2, 0, 3).reshape(hkv, g * lq, d)  # query head h -> kv head h // g
    scores = _fp32_bmm(qg, k.permute(1, 2, 0)) * scale  # [Hkv, G*Lq, Lk]
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask.reshape(1, 1, lk), float("-inf"))
    probs = torch.softmax(scores, dim=-1).to(v.dtype)
    out = torch.bmm(probs, v.transpose(0, 1))  # [Hkv, G*Lq, D]
    return out.reshape(hkv, g, lq, d).permute(2, 0, 1, 3).reshape(lq, hq, d)


def _sdpa_grouped(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                  key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """GQA without copying keys/values (exact when every query sees the same keys: no mask, or one key mask
    [1, 1, 1, Lk]): each KV head's query group is folded into the sequence; a few query rows take
    ``_few_query_attention``."""
    lq, hq, d = q.shape
    hkv = k.shape[1]
    if lq <= SHORT_QUERY_ROWS:
        return _few_query_attention(q, k, v, scale, key_mask)
    g = hq // hkv
    qg = q.reshape(lq, hkv, g, d).permute(1, 2, 0, 3).reshape(1, hkv, g * lq, d)  # query head h -> kv head h // g
    out = F.scaled_dot_product_attention(qg, k.transpose(0, 1)[None], v.transpose(0, 1)[None], attn_mask=key_mask,
                                         scale=scale)
    return out[0].reshape(hkv, g, lq, d).permute(2, 0, 1, 3).reshape(lq, hq, d)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: AttentionLayout, scale: float) -> torch.Tensor:
    gqa = q.shape[1] != k.shape[1]
    qb, kb = layout.q_bounds, layout.k_bounds
    n = layout.num_docs
    if n > 1 and layout.uniform_mode == "full" and not gqa and q.shape[0] == n * layout.max_q \
            and k.shape[0] == n * layout.max_k:
        # equal documents that each see only themselves (a batch of same-size ViT images): one batched call keeps
        # the GPU busier than one small call per document
        qd, kd, vd = (t.view(n, -1, *t.shape[1:]).transpose(1, 2) for t in (q, k, v))  # [n, H, L, D]
        out = F.scaled_dot_product_attention(qd, kd, vd, scale=scale)
        return out.transpose(1, 2).reshape(q.shape)
    outs = []
    for d in range(layout.num_docs):
        mask = _doc_mask(layout, qb[d], qb[d + 1], kb[d], kb[d + 1], q.device)
        qd, kd, vd = q[qb[d]:qb[d + 1]], k[kb[d]:kb[d + 1]], v[kb[d]:kb[d + 1]]
        if gqa and (mask is None or layout.key_valid is not None):
            outs.append(_sdpa_grouped(qd, kd, vd, scale, mask))
            continue
        qd, kd, vd = (t.transpose(0, 1)[None] for t in (qd, kd, vd))  # [1, H, L, D]
        if gqa:  # masked kernels want explicit heads
            rep = qd.shape[1] // kd.shape[1]
            kd, vd = kd.repeat_interleave(rep, 1), vd.repeat_interleave(rep, 1)
        out = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=mask, scale=scale)
        outs.append(out[0].transpose(0, 1))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)


@lru_cache(maxsize=1)
def _compiled_flex():
    from torch.nn.attention.flex_attention import flex_attention

    # default dynamic: a second sequence length recompiles once with symbolic lengths (packed batches vary)
    return torch.compile(flex_attention)


def _flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: AttentionLayout, scale: float) -> torch.Tensor:
    from torch.nn.attention.flex_attention import flex_attention

    # Compiled on CUDA (fused kernel; split-KV decoding for short query blocks); eager elsewhere, where it is a
    # correctness reference.
    attend = _compiled_flex() if q.device.type == "cuda" else flex_attention
    q, k, v = (t.transpose(0, 1)[None] for t in (q, k, v))  # [1, H, L, D] views
    out = attend(q, k, v, block_mask=layout.flex_block_mask(), scale=scale, enable_gqa=q.shape[1] != k.shape[1])
    return out[0].transpose(0, 1)


def _flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: AttentionLayout, scale: float) -> torch.Tensor:
    from flash_attn import flash_attn_varlen_func

    # flash-attn aligns the causal diagonal to the bottom-right, as the cached layout needs.
    return flash_attn_varlen_func(q, k, v, layout.cu_q, layout.cu_k, layout.max_q, layout.max_k,
                                  softmax_scale=scale, causal=layout.uniform_mode == "causal")
