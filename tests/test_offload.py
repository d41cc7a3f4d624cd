"""Offloading on the tiny checkpoint (CPU): streamed layers give the same numbers, budgets split by whole layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from inference.edit_single import main
from inference.inferencer import BagelInferencer
from inference.offload import (ALIGN_BYTES, GIB, STREAMED, OffloadSettings, layer_blocks, load_bagel_offloaded,
                               packed_copies, plan_placement)
from inference.settings import InferenceSettings, NoiseSource
from tests.fixture_paths import TINY

SETTINGS = InferenceSettings(num_timesteps=3, max_think_token_n=6)


def _bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def _sizes(bundle):
    """Decoder and ViT layer sizes, the rest of the model plus the VAE, and the largest single weight module."""
    kinds = layer_blocks(bundle.model)
    layers = {n: _bytes(bundle.model.get_submodule(n)) for n in kinds["decoder"] + kinds["vit"]}
    fixed = _bytes(bundle.model) - sum(layers.values()) + _bytes(bundle.vae)
    slot = max(sum(t.numel() * t.element_size() for t in m.parameters(recurse=False))
               for n in layers for m in bundle.model.get_submodule(n).modules())
    return kinds, layers, fixed, slot


def _auto(budget_bytes: float) -> OffloadSettings:
    return OffloadSettings("auto", budget_bytes / GIB, reserve_gib=0.0)


def _resident(placement) -> set[str]:
    return {n for n, where in placement.device_map.items() if where != STREAMED}


def test_layer_kinds_match_the_config(tiny_bundle):
    kinds = layer_blocks(tiny_bundle.model)
    assert len(kinds["decoder"]) == tiny_bundle.config.llm.num_hidden_layers == 2
    assert len(kinds["vit"]) == tiny_bundle.config.vit.num_hidden_layers


def test_auto_keeps_whole_layers_within_the_budget(tiny_bundle):
    kinds, layers, fixed, slot = _sizes(tiny_bundle)
    first, second = kinds["decoder"]
    smallest_vit = min(layers[n] for n in kinds["vit"])
    # room for one decoder layer (and not one more ViT layer) beside the small modules and one streamed module
    placement = plan_placement(tiny_bundle, _auto(fixed + slot + layers[first] + smallest_vit - 1), "cpu")
    assert set(placement.streamed) == {second, *kinds["vit"]}
    small = set(placement.device_map) - set(layers)
    assert _resident(placement) == {first} | small
    assert {"vae2llm", "llm2vae", "language_model.lm_head", "language_model.model.embed_tokens"} <= small
    assert set(placement.device_map) >= set(layers)  # every layer is a key of its own: never split
    assert placement.layers_on_device == {"decoder": "1/2", "vit": f"0/{len(kinds['vit'])}"}
    assert placement.streamed_bytes == layers[second] + sum(layers[n] for n in kinds["vit"])
    assert placement.resident_bytes == fixed + layers[first]
    assert placement.inference_overrides() == {"cuda_graphs": False, "compile_layers": False}


def test_auto_fills_leftover_room_with_vit_layers_and_needs_no_slot_when_all_fit(tiny_bundle):
    kinds, layers, fixed, slot = _sizes(tiny_bundle)
    everything = fixed + sum(layers.values())
    assert plan_placement(tiny_bundle, _auto(everything), "cpu").streamed == []
    one_vit_short = plan_placement(tiny_bundle, _auto(everything - 1), "cpu")
    assert not set(kinds["decoder"]) & set(one_vit_short.streamed)  # decoder layers have priority
    assert set(one_vit_short.streamed) < set(kinds["vit"]) and one_vit_short.streamed
    assert plan_placement(tiny_bundle, _auto(everything), "cpu").inference_overrides() == {}


def test_auto_reserve_is_taken_from_the_budget(tiny_bundle):
    _, layers, fixed, slot = _sizes(tiny_bundle)
    budget = fixed + slot + max(layers.values()) + 1000
    reserve = 0.5 * max(layers.values())
    with_reserve = OffloadSettings("auto", (budget + reserve) / GIB, reserve_gib=reserve / GIB)
    assert plan_placement(tiny_bundle, with_reserve, "cpu").device_map == \
        plan_placement(tiny_bundle, _auto(budget), "cpu").device_map


def test_auto_below_the_minimum_names_it(tiny_bundle):
    _, _, fixed, slot = _sizes(tiny_bundle)
    with pytest.raises(ValueError, match="below the .* GiB offloading needs"):
        plan_placement(tiny_bundle, _auto(fixed + slot - 1), "cpu")


def test_sequential_streams_every_layer(tiny_bundle):
    kinds, layers, fixed, _ = _sizes(tiny_bundle)
    placement = plan_placement(tiny_bundle, OffloadSettings("sequential"), "cpu")
    assert set(placement.streamed) == set(layers) and placement.resident_bytes == fixed


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "disk"}, "offload mode must be one of"),
    ({"mode": "sequential", "max_gpu_memory_gib": 10.0}, "applies to --offload auto only"),
    ({"mode": "none", "max_gpu_memory_gib": 10.0}, "applies to --offload auto only"),
    ({"mode": "auto", "max_gpu_memory_gib": -1.0}, "positive number"),
    ({"mode": "auto", "max_gpu_memory_gib": float("nan")}, "positive number"),
    ({"mode": "auto", "reserve_gib": -1.0}, "reserve must be >= 0"),
])
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OffloadSettings(**kwargs)


def test_cli_strings_and_missing_budget_on_cpu(tiny_bundle):
    assert OffloadSettings.from_cli("auto", "20.5").max_gpu_memory_gib == 20.5
    with pytest.raises(ValueError, match="number of GiB"):
        OffloadSettings.from_cli("auto", "20GB")
    with pytest.raises(ValueError, match="needs --max-gpu-memory"):
        plan_placement(tiny_bundle, OffloadSettings("auto"), "cpu")


def test_packed_copies_share_one_aligned_buffer():
    tensors = [torch.randn(3, 5), torch.arange(7, dtype=torch.int64), torch.randn(2, 3).to(torch.bfloat16),
               torch.randn(1)]
    copies = packed_copies(tensors, pin_memory=False)
    base = copies[0].untyped_storage().data_ptr()
    for original, copy in zip(tensors, copies):
        assert torch.equal(copy, original) and copy.dtype == original.dtype and copy.shape == original.shape
        assert copy.untyped_storage().data_ptr() == base and copy.data_ptr() != original.data_ptr()
        assert (copy.data_ptr() - base) % ALIGN_BYTES == 0
    assert copies[1].data_ptr() - base == ALIGN_BYTES  # 60 bytes of float32 rounded up to one alignment unit


# ------------------------------------------------------------------------------------- streamed runs, same numbers
@pytest.fixture(scope="module", params=["auto", "sequential"])
def offloaded(request, tiny_bundle):
    if request.param == "auto":
        _, layers, fixed, slot = _sizes(tiny_bundle)
        settings = _auto(fixed + slot + max(layers.values()) + 1)  # one decoder layer resident, the rest streamed
    else:
        settings = OffloadSettings("sequential")
    bundle, placement = load_bagel_offloaded(TINY, settings, "cpu", torch.float32)
    assert placement.streamed
    return bundle, placement


def _edit_numbers(inferencer: BagelInferencer, image: Image.Image):
    """Plan tokens and logits, the final latent tokens and the image of a think-then-edit."""
    noise = NoiseSource(0)
    contexts, _ = inferencer.prepare_edit(image, "make the sky green", SETTINGS, True, noise)
    text = inferencer.generate_text(contexts.cond, SETTINGS)
    contexts.add_thinking(text.text)
    out = inferencer.generate_image(contexts, contexts.image_hw, SETTINGS, noise)
    return text, out


def test_streamed_layers_live_in_cpu_memory_only(offloaded):
    bundle, placement = offloaded
    for name in placement.streamed:
        tensors = list(bundle.model.get_submodule(name).parameters())
        assert tensors and all(t.is_meta for t in tensors)  # a forward without the hooks could not run
    assert not any(t.is_meta for t in bundle.model.vae2llm.parameters())


def test_offloaded_think_edit_equals_plain(offloaded, tiny_bundle):
    bundle, placement = offloaded
    image = Image.effect_noise((96, 64), 60).convert("RGB")
    ref_text, ref = _edit_numbers(BagelInferencer(tiny_bundle), image)
    text, out = _edit_numbers(BagelInferencer(bundle), image)
    assert text.token_ids == ref_text.token_ids and len(text.token_ids) > 1
    # fp32 summation-order noise only: a streamed weight is a fresh copy, whose alignment can pick another BLAS
    # kernel on some CPUs (3e-6 seen on logits of magnitude ~5)
    torch.testing.assert_close(text.step_logits, ref_text.step_logits, rtol=0, atol=2e-5)
    torch.testing.assert_close(out.latent_tokens, ref.latent_tokens, rtol=0, atol=2e-5)
    assert np.array_equal(np.asarray(out.image), np.asarray(ref.image))
    for name in placement.streamed:  # the hooks dropped the weights again after use
        assert all(t.is_meta for t in bundle.model.get_submodule(name).parameters())


def test_kv_stores_are_written_in_place(offloaded, tiny_bundle):
    bundle, _ = offloaded
    ids = torch.tensor([1, 5, 9, 12, 2])
    ref_cache, cache = tiny_bundle.model.new_cache(16), bundle.model.new_cache(16)
    stores = [(kv.keys.data_ptr(), kv.values.data_ptr()) for kv in cache.layers]
    tiny_bundle.model.prefill_text(ref_cache, ids)
    bundle.model.prefill_text(cache, ids)
    assert [(kv.keys.data_ptr(), kv.values.data_ptr()) for kv in cache.layers] == stores
    for got, want in zip(cache.layers, ref_cache.layers):
        assert got.keys[:5].abs().sum() > 0
        torch.testing.assert_close(got.keys, want.keys, rtol=0, atol=1e-6)
        torch.testing.assert_close(got.values, want.values, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------- CLI
FAST = ["--device", "cpu", "--dtype", "fp32", "--num-timesteps", "3"]


def test_cli_sequential_offload_gives_the_same_image(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.effect_noise((80, 48), 40).convert("RGB").save(src)
    common = ["--model-path", str(TINY), "--image", str(src), "--instruction", "add a moon", *FAST]
    assert main([*common, "--out", str(tmp_path / "plain.png")]) == 0
    assert main([*common, "--out", str(tmp_path / "seq.png"), "--offload", "sequential"]) == 0
    assert "offload sequential: on cpu 0/2 decoder layers" in capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "seq.png")), np.asarray(Image.open(tmp_path / "plain.png")))
    meta = json.loads((tmp_path / "seq.png.json").read_text())
    assert meta["offload"]["layers_on_device"]["decoder"] == "0/2" and meta["settings"]["cuda_graphs"] is False


@pytest.mark.parametrize("flags, message", [
    (["--offload", "auto", "--max-gpu-memory", "lots"], "must be a number of GiB"),
    (["--offload", "auto", "--max-gpu-memory", "0"], "positive number"),
    (["--offload", "sequential", "--max-gpu-memory", "8"], "applies to --offload auto only"),
    (["--offload", "auto"], "needs --max-gpu-memory"),
    (["--offload", "auto", "--max-gpu-memory", "0.000001"], "offloading needs"),
])
def test_cli_bad_offload_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    src = tmp_path / "in.png"
    Image.new("RGB", (32, 32)).save(src)
    out = tmp_path / "o.png"
    code = main(["--model-path", str(TINY), "--image", str(src), "--instruction", "x", "--out", str(out), *FAST,
                 *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
