"""BAGEL: a Qwen2 MoT LLM that reads text, SigLIP ViT tokens and FLUX latent tokens in one packed sequence.

``forward_train`` computes per-token cross-entropy and per-token flow-matching velocity error on a packed batch.
The inference primitives (``prefill_*``, ``decode_logits``, ``predict_velocity``) extend or query key/value caches of
contexts; ``inference/`` composes them into understanding, thinking and editing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from modeling.diffusion.schedule import training_timesteps
from modeling.vit.siglip_navit import SiglipNaViT

from .attention import AttentionLayout
from .config import BagelConfig
from .embeddings import MLPConnector, PositionEmbedding, TimestepEmbedder
from .kv_cache import KVCache, LayerKV, pack_contexts
from .language_model import Qwen2MoTForCausalLM
from .latents import grid_position_ids, patchify_latent


@dataclass(frozen=True)
class SpecialTokens:
    bos: int  # <|im_start|>, opens every text block
    eos: int  # <|im_end|>, closes every text block
    start_of_image: int  # <|vision_start|>
    end_of_image: int  # <|vision_end|>


QWEN25_SPECIAL_TOKENS = SpecialTokens(bos=151644, eos=151645, start_of_image=151652, end_of_image=151653)


@dataclass
class ImageQueryPlan:
    """The query block of a denoising step in each context, laid out once and reused for every step."""

    grid_hw: tuple[int, int]  # latent token grid
    latent_position_ids: torch.Tensor  # [N] row * max_latent_size + col
    position_ids: torch.Tensor  # [n_ctx * (N + 2)] RoPE positions (one per context)
    gen_indexes: torch.Tensor  # [n_ctx * N] packed query rows of the latent tokens
    cache_lens: list[int]
    store: list[LayerKV]  # per layer: the contexts' keys/values with free query slots
    slots: torch.Tensor  # [n_ctx * (N + 2)] query slots in the store
    layout: AttentionLayout
    compiled: bool = False  # run the steps through torch.compile'd decoder layers
    group: int = 1  # latents queried together per context (a GRPO group), see plan_group_query


@dataclass
class PackedForward:
    hidden: torch.Tensor  # [L, hidden] final-normed hidden states of the packed sequence
    x0: torch.Tensor | None  # [N_vae, 64] clean latent tokens
    noise: torch.Tensor | None  # [N_vae, 64]
    t: torch.Tensor | None  # [N_vae] shifted timesteps (0 for clean conditioning tokens)


@dataclass
class TrainLosses:
    ce: torch.Tensor  # [n_ce] per-token cross-entropy
    mse: torch.Tensor  # [n_mse, patch_latent_dim] per-element squared velocity error


class Bagel(nn.Module):
    def __init__(self, config: BagelConfig, special_tokens: SpecialTokens = QWEN25_SPECIAL_TOKENS,
                 attn_backend: str = "auto"):
        super().__init__()
        self.config, self.special_tokens = config, special_tokens
        llm, vit, args = config.llm, config.vit, config.bagel
        hidden, latent_dim = llm.hidden_size, config.patch_latent_dim
        self.language_model = Qwen2MoTForCausalLM(llm, attn_backend)
        self.time_embedder = TimestepEmbedder(hidden)
        self.vae2llm = nn.Linear(latent_dim, hidden)
        self.llm2vae = nn.Linear(hidden, latent_dim)
        self.latent_pos_embed = PositionEmbedding(args.max_latent_size, hidden)
        self.vit_model = SiglipNaViT(vit, attn_backend)
        self.connector = MLPConnector(vit.hidden_size, hidden, args.connector_act)
        self.vit_pos_embed = PositionEmbedding(args.vit_max_num_patch_per_side, hidden)
        self._compiled_layers: list[nn.Module] | None = None  # built on first use, see compiled_decoder_layers

    # ----------------------------------------------------------------------------------------------- embeddings
    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:  # [n] -> [n, hidden]
        return self.language_model.model.embed_tokens(ids)

    def embed_vit(self, patches: torch.Tensor, position_ids: torch.Tensor, seqlens: list[int]) -> torch.Tensor:
        """Packed ViT patches [N, 3*14*14] -> LLM tokens [N, hidden]."""
        features = self.vit_model(patches, position_ids, seqlens)
        return self.connector(features) + self.vit_pos_embed(position_ids)

    def embed_latents(self, x_t: torch.Tensor, t: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """Latent tokens [N, 64] at times t [N] -> LLM tokens [N, hidden] (clean tokens use t = 0)."""
        x_t = x_t.to(self.vae2llm.weight.dtype)
        return self.vae2llm(x_t) + self.time_embedder(t) + self.latent_pos_embed(position_ids)

    # ------------------------------------------------------------------------------------------------- training
    def packed_forward(self, batch: dict) -> PackedForward:
        """The LLM over one packed batch (keys as the official packed dataset emits, plus ``padded_latent``).

        ``noise`` [N_vae, 64] may be given (reference checks); otherwise it is drawn with ``torch.randn``."""
        dev = self.vae2llm.weight.device
        seq = torch.zeros(int(batch["sequence_length"]), self.config.llm.hidden_size, device=dev,
                          dtype=self.vae2llm.weight.dtype)
        seq[batch["packed_text_indexes"]] = self.embed_text(batch["packed_text_ids"]).to(seq.dtype)

        vit_idx = batch.get("packed_vit_token_indexes")
        if vit_idx is not None and vit_idx.numel():
            seqlens = [int(n) for n in batch["vit_token_seqlens"]]
            vit = self.embed_vit(batch["packed_vit_tokens"], batch["packed_vit_position_ids"], seqlens)
            seq[vit_idx] = vit.to(seq.dtype)

        vae_idx, x0, noise, t = batch.get("packed_vae_token_indexes"), None, None, None
        if vae_idx is not None and vae_idx.numel():
            patch = self.config.bagel.latent_patch_size
            x0 = torch.cat([patchify_latent(lat[:, :h * patch, :w * patch], patch)
                            for lat, (h, w) in zip(batch["padded_latent"], batch["patchified_vae_latent_shapes"])])
            noise = batch.get("noise")
            noise = torch.randn_like(x0) if noise is None else noise.to(x0)
            t = training_timesteps(batch["packed_timesteps"].to(x0.dtype), self.config.bagel.timestep_shift)
            x_t = (1 - t[:, None]) * x0 + t[:, None] * noise
            seq[vae_idx] = self.embed_latents(x_t, t, batch["packed_latent_position_ids"]).to(seq.dtype)
        else:
            vae_idx = None

        layout = AttentionLayout.from_splits(list(batch["sample_lens"]), list(batch["split_lens"]),
                                             list(batch["attn_modes"]), dev)
        hidden = self.language_model.model(seq, batch["packed_position_ids"], layout, vae_idx)
        return PackedForward(hidden, x0, noise, t)

    def forward_train(self, batch: dict) -> TrainLosses:
        """Per-token cross-entropy on ``ce_loss_indexes`` and per-element velocity error on ``mse_loss_indexes``."""
        out = self.packed_forward(batch)
        mse_idx, ce_idx = batch.get("mse_loss_indexes"), batch.get("ce_loss_indexes")
        if out.t is not None and mse_idx is not None and mse_idx.numel():
            pred = self.llm2vae(out.hidden[mse_idx])
            target = (out.noise - out.x0)[out.t > 0]  # noised tokens, in the order of the MSE indexes
            mse = (pred - target.to(pred.dtype)) ** 2
        else:
            mse = out.hidden.new_zeros(0, self.config.patch_latent_dim)
        if ce_idx is not None and ce_idx.numel():
            logits = self.language_model.lm_head(out.hidden[ce_idx])
            ce = F.cross_entropy(logits.float(), batch["packed_label_ids"], reduction="none")
        else:
            ce = out.hidden.new_zeros(0)
        return TrainLosses(ce=ce, mse=mse)

    # ------------------------------------------------------------------------------------------------ inference
    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype of the LLM's inputs and key/value caches at inference: the (never trained) token embedding's.
        Trained parts may keep float32 master weights (RL); their outputs are cast to this dtype."""
        return self.language_model.model.embed_tokens.weight.dtype

    def new_cache(self, capacity: int = 256) -> KVCache:
        llm = self.config.llm
        head_dim = llm.hidden_size // llm.num_attention_heads
        return KVCache(llm.num_hidden_layers, (llm.num_key_value_heads, head_dim), self.compute_dtype,
                       self.vae2llm.weight.device, capacity)

    def _run_block(self, cache: KVCache, embeds: torch.Tensor, position_ids: torch.Tensor,
                   gen_indexes: torch.Tensor | None, causal: bool) -> torch.Tensor:
        """Run one block [n, hidden] on top of ``cache``; its keys land in the cache's free slots (not committed)."""
        n = embeds.shape[0]
        store, slots = cache.with_slots(n)
        layout = AttentionLayout.for_cached_queries([cache.length], [n], causal, cache.device)
        return self.language_model.model(embeds.to(self.compute_dtype), position_ids, layout, gen_indexes,
                                         store, slots)

    def _image_block(self, tokens: torch.Tensor) -> torch.Tensor:
        """[n, hidden] -> [n + 2, hidden] wrapped in start/end-of-image markers."""
        marks = self.embed_text(torch.tensor([self.special_tokens.start_of_image, self.special_tokens.end_of_image],
                                             device=tokens.device)).to(tokens.dtype)
        return torch.cat([marks[:1], tokens, marks[1:]])

    @torch.no_grad()
    def prefill_text(self, cache: KVCache, ids: torch.Tensor) -> None:
        """Append a text block (ids already wrapped in bos/eos by the caller): causal, one position per token."""
        n = ids.numel()
        self._run_block(cache, self.embed_text(ids), cache.next_position + torch.arange(n, device=ids.device), None,
                        causal=True)
        cache.commit(n, n)

    @torch.no_grad()
    def prefill_vit(self, cache: KVCache, patches: torch.Tensor, grid_hw: tuple[int, int]) -> None:
        """Append an image as ViT tokens: [soi] + h*w tokens + [eoi], full attention, one RoPE position."""
        pos_ids = grid_position_ids(*grid_hw, self.config.bagel.vit_max_num_patch_per_side, patches.device)
        block = self._image_block(self.embed_vit(patches, pos_ids, [patches.shape[0]]))
        pos = torch.full((block.shape[0],), cache.next_position, device=patches.device)
        self._run_block(cache, block, pos, None, causal=False)
        cache.commit(block.shape[0], 1)

    @torch.no_grad()
    def prefill_vae(self, cache: KVCache, latent: torch.Tensor) -> None:
        """Append a clean latent [C, 2h, 2w] as generation tokens (time embedding of t = 0), one RoPE position."""
        patch = self.config.bagel.latent_patch_size
        h, w = latent.shape[1] // patch, latent.shape[2] // patch
        pos_ids = grid_position_ids(h, w, self.config.bagel.max_latent_size, latent.device)
        tokens = self.embed_latents(patchify_latent(latent, patch), torch.zeros(h * w, device=latent.device), pos_ids)
        block = self._image_block(tokens)
        pos = torch.full((block.shape[0],), cache.next_position, device=latent.device)
        self._run_block(cache, block, pos, torch.arange(1, h * w + 1, device=latent.device), causal=False)
        cache.commit(block.shape[0], 1)

    @torch.no_grad()
    def decode_logits(self, cache: KVCache, ids: torch.Tensor) -> torch.Tensor:
        """Feed ``ids`` [n] at the next positions (causal, committed) -> logits [n, vocab]."""
        n = ids.numel()
        hidden = self._run_block(cache, self.embed_text(ids), cache.next_position + torch.arange(n, device=ids.device),
                                 None, causal=True)
        cache.commit(n, n)
        return self.language_model.lm_head(hidden)

    def compiled_decoder_layers(self) -> list[nn.Module]:
        """torch.compile'd wrappers of the decoder layers (same weights), built once and shared by every layer's
        calls: the fixed-shape denoising steps fuse their per-token work (norms, RoPE, activations, residuals).
        Compiled for dynamic shapes from the first call: a recompilation after the first edit (automatic dynamic
        shapes) swapped kernels, so the first compiled edit differed from later ones by a few pixel levels."""
        if self._compiled_layers is None:
            self._compiled_layers = [torch.compile(layer, dynamic=True) for layer in self.language_model.model.layers]
        return self._compiled_layers

    def plan_image_query(self, caches: list[KVCache], grid_hw: tuple[int, int], compiled: bool = False
                         ) -> ImageQueryPlan:
        """Prepare the block [soi] + h*w latent tokens + [eoi] against each context, for every denoising step.

        One context queries its own cache's free slots; several are packed into one store, built once."""
        h, w = grid_hw
        dev, n_tok = caches[0].device, h * w
        q = n_tok + 2
        if len(caches) == 1:
            store, slots = caches[0].with_slots(q)
            layout = AttentionLayout.for_cached_queries([caches[0].length], [q], False, dev)
        else:
            packed = pack_contexts(caches, [q] * len(caches), causal=False)
            store, slots, layout = packed.buffers, packed.insert_idx, packed.layout
        return ImageQueryPlan(
            grid_hw=grid_hw,
            latent_position_ids=grid_position_ids(h, w, self.config.bagel.max_latent_size, dev),
            position_ids=torch.cat([torch.full((q,), c.next_position, device=dev) for c in caches]),
            gen_indexes=torch.cat([d * q + torch.arange(1, n_tok + 1, device=dev) for d in range(len(caches))]),
            cache_lens=[c.length for c in caches], store=store, slots=slots, layout=layout, compiled=compiled)

    @torch.no_grad()
    def predict_velocity(self, plan: ImageQueryPlan, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocity of latent tokens x_t [N, 64] at time t (scalar) in each planned context -> [n_contexts, N, 64]."""
        n_ctx, n_tok = len(plan.cache_lens), x_t.shape[0]
        tokens = self.embed_latents(x_t, t.reshape(1).expand(n_tok).to(x_t.device), plan.latent_position_ids)
        embeds = self._image_block(tokens).repeat(n_ctx, 1)
        layers = self.compiled_decoder_layers() if plan.compiled else None
        hidden = self.language_model.model(embeds.to(self.compute_dtype), plan.position_ids, plan.layout,
                                           plan.gen_indexes, plan.store, plan.slots, layers)
        return self.llm2vae(hidden[plan.gen_indexes].to(self.llm2vae.weight.dtype)).reshape(n_ctx, n_tok, -1)

    def plan_group_query(self, caches: list[KVCache], grid_hw: tuple[int, int], group: int) -> ImageQueryPlan:
        """Like ``plan_image_query`` for ``group`` latents at once (the members of a GRPO group, which share their
        contexts): each context's keys are stored once, followed by the group's query blocks, and a block sees the
        context and itself, never another member. One forward then runs every (context, member) pair."""
        if group == 1:
            return self.plan_image_query(caches, grid_hw)
        h, w = grid_hw
        dev, n_tok = caches[0].device, h * w
        q = n_tok + 2
        block = group * q
        if len(caches) == 1:
            store, slots = caches[0].with_slots(block)
        else:
            packed = pack_contexts(caches, [block] * len(caches), causal=False)
            store, slots = packed.buffers, packed.insert_idx
        member_rows = (torch.arange(group, device=dev)[:, None] * q + torch.arange(1, n_tok + 1, device=dev)).flatten()
        return ImageQueryPlan(
            grid_hw=grid_hw,
            latent_position_ids=grid_position_ids(h, w, self.config.bagel.max_latent_size, dev),
            position_ids=torch.cat([torch.full((block,), c.next_position, device=dev) for c in caches]),
            gen_indexes=torch.cat([d * block + member_rows for d in range(len(caches))]),
            cache_lens=[c.length for c in caches], store=store, slots=slots,
            layout=AttentionLayout.for_group_queries([c.length for c in caches], q, group, dev), group=group)

    def group_velocity(self, plan: ImageQueryPlan, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocities of ``plan.group`` latents x_t [G, N, 64] at time t in each planned context -> [n_ctx, G, N, 64].

        Differentiable (the caller picks no_grad or not). The store is taken without autograd history: only this
        forward's query keys carry gradients, and a later forward may write the same slots again."""
        n_ctx, (group, n_tok, channels) = len(plan.cache_lens), x_t.shape
        if group != plan.group:
            raise ValueError(f"the plan is for groups of {plan.group} latents, got {group}")
        tokens = self.embed_latents(x_t.reshape(group * n_tok, channels), t.reshape(1).expand(group * n_tok).to(
            x_t.device), plan.latent_position_ids.repeat(group))
        marks = self.embed_text(torch.tensor([self.special_tokens.start_of_image, self.special_tokens.end_of_image],
                                             device=x_t.device)).to(tokens.dtype)
        blocks = torch.cat([marks[:1].expand(group, 1, -1), tokens.view(group, n_tok, -1),
                            marks[1:].expand(group, 1, -1)], dim=1)
        embeds = blocks.reshape(group * (n_tok + 2), -1).repeat(n_ctx, 1)
        store = [LayerKV(kv.keys.detach(), kv.values.detach()) for kv in plan.store]
        hidden = self.language_model.model(embeds.to(self.compute_dtype), plan.position_ids, plan.layout,
                                           plan.gen_indexes, store, plan.slots)
        return self.llm2vae(hidden[plan.gen_indexes].to(self.llm2vae.weight.dtype)).reshape(n_ctx, group, n_tok, -1)
