"""Equivalence of the model's paths: packed training forward vs cached inference, batched vs per-branch CFG,
block prefill vs token-by-token decoding."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from data.transforms import ImageTransform, patchify
from inference.inferencer import BagelInferencer
from inference.settings import InferenceSettings, NoiseSource
from modeling.bagel.latents import grid_position_ids


def _edit_sample(bundle, gen, side):
    """An edit-like sample: clean VAE image, ViT image, instruction text, noised target latent (side x side tokens)."""
    special = bundle.special_tokens
    text = [special.bos, *bundle.tokenizer.encode("Make it blue.", add_special_tokens=False), special.eos]
    cond_latent = torch.randn(16, 2 * side, 2 * side, generator=gen)
    target_latent = torch.randn(16, 2 * side, 2 * side, generator=gen)
    vit_pixels = ImageTransform(56, 28, 14)(Image.new("RGB", (28, 42), (200, 30, 60)))
    patches = patchify(vit_pixels, 14)
    vit_grid = (vit_pixels.shape[1] // 14, vit_pixels.shape[2] // 14)
    return text, cond_latent, target_latent, patches, vit_grid


def _packed_batch(bundle, text, cond_latent, target_latent, patches, vit_grid, raw_t, noise):
    special, max_latent = bundle.special_tokens, bundle.config.bagel.max_latent_size
    side = cond_latent.shape[1] // 2
    n_vit, n_lat = patches.shape[0], side * side
    splits = [n_lat + 2, n_vit + 2, len(text), n_lat + 2]
    offsets = torch.tensor([0, *splits]).cumsum(0).tolist()
    vae_cond_idx = torch.arange(1, 1 + n_lat)
    vit_idx = offsets[1] + 1 + torch.arange(n_vit)
    text_idx = offsets[2] + torch.arange(len(text))
    vae_tgt_idx = offsets[3] + 1 + torch.arange(n_lat)
    marker_idx = torch.tensor([0, n_lat + 1, offsets[1], offsets[2] - 1, offsets[3], offsets[4] - 1])
    soi, eoi = special.start_of_image, special.end_of_image
    text_ids = torch.tensor([soi, eoi, soi, eoi, *text, soi, eoi])
    text_indexes = torch.cat([marker_idx[:4], text_idx, marker_idx[4:]])
    positions = torch.cat([torch.full((splits[0],), 0), torch.full((splits[1],), 1),
                           2 + torch.arange(len(text)), torch.full((splits[3],), 2 + len(text))])
    return dict(
        sequence_length=offsets[-1], sample_lens=[offsets[-1]], split_lens=splits,
        attn_modes=["full", "full", "causal", "noise"], packed_text_ids=text_ids, packed_text_indexes=text_indexes,
        packed_position_ids=positions, packed_vit_tokens=patches,
        packed_vit_position_ids=grid_position_ids(*vit_grid, bundle.config.bagel.vit_max_num_patch_per_side),
        packed_vit_token_indexes=vit_idx, vit_token_seqlens=torch.tensor([n_vit]),
        padded_latent=torch.stack([cond_latent, target_latent]), patchified_vae_latent_shapes=[(side, side)] * 2,
        packed_latent_position_ids=torch.cat([grid_position_ids(side, side, max_latent)] * 2),
        packed_vae_token_indexes=torch.cat([vae_cond_idx, vae_tgt_idx]),
        packed_timesteps=torch.cat([torch.full((n_lat,), float("-inf")), torch.full((n_lat,), raw_t)]),
        noise=noise, mse_loss_indexes=vae_tgt_idx, ce_loss_indexes=torch.empty(0, dtype=torch.long),
        packed_label_ids=torch.empty(0, dtype=torch.long))


@pytest.mark.parametrize("side", [2, 8])  # 8x8: the image blocks take the sliver routing path at inference
def test_packed_training_forward_equals_cached_inference(tiny_bundle, side):
    model, gen = tiny_bundle.model, torch.Generator().manual_seed(3)
    text, cond_latent, target_latent, patches, vit_grid = _edit_sample(tiny_bundle, gen, side)
    n_lat = side * side
    noise = torch.randn(2 * n_lat, 64, generator=gen)
    batch = _packed_batch(tiny_bundle, text, cond_latent, target_latent, patches, vit_grid, 0.3, noise)
    with torch.no_grad():
        out = model.packed_forward(batch)
        train_velocity = model.llm2vae(out.hidden[batch["mse_loss_indexes"]])
    t = out.t[n_lat]
    x_t = ((1 - out.t[:, None]) * out.x0 + out.t[:, None] * out.noise)[n_lat:]

    cache = model.new_cache(capacity=4)  # small on purpose: the cache must grow
    model.prefill_vae(cache, cond_latent)
    model.prefill_vit(cache, patches, vit_grid)
    model.prefill_text(cache, torch.tensor(text))
    assert (cache.length, cache.next_position) == (batch["sequence_length"] - (n_lat + 2), 2 + len(text))
    plan = model.plan_image_query([cache], (side, side))
    cached_velocity = model.predict_velocity(plan, x_t, t)[0]
    torch.testing.assert_close(cached_velocity, train_velocity, atol=2e-5, rtol=1e-5)


def test_sliver_routing_equals_gather_routing():
    from modeling.bagel.mot_layer import ExpertRouting

    gen = torch.Generator().manual_seed(0)
    und, mot = torch.nn.Linear(8, 5), torch.nn.Linear(8, 5)
    x = torch.randn(100, 8, generator=gen)
    routing = ExpertRouting.from_gen_indexes(100, torch.arange(1, 99))  # und rows 0 and 99: a sliver
    expected = mot(x)
    expected[[0, 99]] = und(x[[0, 99]])
    torch.testing.assert_close(routing.apply(x, und, mot), expected)
    many_und = ExpertRouting.from_gen_indexes(100, torch.arange(0, 100, 2))  # half and half: gather path
    torch.testing.assert_close(many_und.apply(x, und, mot)[1::2], und(x[1::2]))
    torch.testing.assert_close(many_und.apply(x, und, mot)[0::2], mot(x[0::2]))


def test_batched_cfg_branches_equal_separate_forwards(tiny_bundle):
    inferencer = BagelInferencer(tiny_bundle, InferenceSettings(num_timesteps=4, vae_transform=(64, 32, 16),
                                                                vit_transform=(56, 28, 14)))
    image = Image.new("RGB", (64, 48), (20, 120, 220))
    results = {}
    for batch_cfg in (True, False):
        settings = InferenceSettings.from_dict({**inferencer.settings.to_dict(), "batch_cfg": batch_cfg,
                                                "cfg_renorm_type": "text_channel", "cfg_interval": (0.0, 1.0)})
        noise = NoiseSource(7)
        contexts, _ = inferencer.prepare_edit(image, "add a red hat", settings, False, noise)
        results[batch_cfg] = inferencer.generate_image(contexts, contexts.image_hw, settings, noise, record=True)
    torch.testing.assert_close(results[True].latent_tokens, results[False].latent_tokens, atol=1e-5, rtol=1e-5)
    assert set(results[True].first_step_branch_velocities) == {"cond", "cfg_text", "cfg_img"}


def test_compiled_layers_equal_eager_steps(tiny_bundle):
    """torch.compile'd decoder layers (fused per-token work, attention left eager) give the eager think logits and
    denoising velocities."""
    inferencer = BagelInferencer(tiny_bundle, InferenceSettings(num_timesteps=3, vae_transform=(64, 32, 16),
                                                                vit_transform=(56, 28, 14), max_think_token_n=4))
    image = Image.new("RGB", (64, 48), (120, 20, 220))
    logits, latents = [], []
    for compiled in (False, True):
        settings = InferenceSettings.from_dict({**inferencer.settings.to_dict(), "compile_layers": compiled})
        noise = NoiseSource(3)
        contexts, _ = inferencer.prepare_edit(image, "turn it green", settings, True, noise)
        logits.append(inferencer.generate_text(contexts.cond, settings).step_logits)
        latents.append(inferencer.generate_image(contexts, contexts.image_hw, settings, noise).latent_tokens)
    torch.testing.assert_close(logits[1], logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(latents[1], latents[0], atol=1e-5, rtol=1e-5)


def test_block_prefill_equals_token_by_token_decoding(tiny_bundle):
    model = tiny_bundle.model
    ids = torch.tensor(tiny_bundle.tokenizer.encode("a cat on a mat, twice over", add_special_tokens=False))
    prefix, rest = ids[:4], ids[4:]
    block_cache, step_cache = model.new_cache(), model.new_cache(capacity=2)
    model.prefill_text(block_cache, prefix)
    model.prefill_text(step_cache, prefix)
    block_logits = model.decode_logits(block_cache, rest)
    step_logits = torch.cat([model.decode_logits(step_cache, rest[i:i + 1]) for i in range(rest.numel())])
    torch.testing.assert_close(step_logits, block_logits, atol=1e-5, rtol=1e-5)


def test_forked_contexts_do_not_share_storage(tiny_bundle):
    model = tiny_bundle.model
    base = model.new_cache()
    model.prefill_text(base, torch.tensor([1, 2, 3]))
    fork = base.fork()
    model.prefill_text(base, torch.tensor([4, 5]))
    logits_fork = model.decode_logits(fork.fork(), torch.tensor([9]))
    fresh = model.new_cache()
    model.prefill_text(fresh, torch.tensor([1, 2, 3]))
    torch.testing.assert_close(logits_fork, model.decode_logits(fresh, torch.tensor([9])))
    assert (fork.length, base.length) == (3, 5)


def test_same_seed_same_edit_and_other_seed_differs(tiny_bundle):
    inferencer = BagelInferencer(tiny_bundle, InferenceSettings(num_timesteps=3, vae_transform=(64, 32, 16),
                                                                vit_transform=(56, 28, 14)))
    image = Image.new("RGB", (64, 64), (90, 90, 20))
    a = inferencer.edit(image, "make it brighter", seed=1)
    b = inferencer.edit(image, "make it brighter", seed=1)
    c = inferencer.edit(image, "make it brighter", seed=2)
    assert a.image.size == (64, 64)
    assert a.image.tobytes() == b.image.tobytes() and a.image.tobytes() != c.image.tobytes()


def test_static_decoder_equals_dynamic_decoding(tiny_bundle):
    from inference.static_decode import StaticDecoder

    model = tiny_bundle.model
    prompt = torch.tensor(tiny_bundle.tokenizer.encode("what is in the picture", add_special_tokens=False))
    context = model.new_cache()
    model.prefill_text(context, prompt)
    dynamic, static = context.fork(), StaticDecoder(model, context.fork(6), use_graph=False)
    token = torch.tensor([3])
    for _ in range(static.cache.capacity - static.cache.length):  # at least the 6 asked for
        expected = model.decode_logits(dynamic, token)
        got = static.feed(token)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        token = expected[-1].argmax().reshape(1)
    assert static.cache.length == dynamic.length and static.cache.next_position == dynamic.next_position
    with pytest.raises(ValueError, match="full"):
        static.feed(token)


def test_multi_turn_edit_keeps_earlier_turns_in_context(tiny_bundle):
    inferencer = BagelInferencer(tiny_bundle, InferenceSettings(num_timesteps=3, vae_transform=(64, 32, 16),
                                                                vit_transform=(56, 28, 14)))
    image = Image.new("RGB", (64, 48), (200, 40, 40))
    first, second = inferencer.edit_turns(image, ["make it green", "now add a moon"], seed=4)
    alone = inferencer.edit(first.image, "now add a moon", seed=4)
    assert first.image.size == second.image.size == (64, 48)
    # the first turn equals a plain edit; the second differs from editing its input without the history
    assert first.image.tobytes() == inferencer.edit(image, "make it green", seed=4).image.tobytes()
    assert second.image.tobytes() != alone.image.tobytes()
