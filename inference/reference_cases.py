"""Inference-level reference cases (``understand``, ``edit``, ``think_edit``, ``t2i``) run through BagelInferencer.

The recorded random draws are replayed; everything else (resizes, contexts, decoding, guidance, sampling) is this
repository's code. Tolerances: ../shared/reference/bagel-tiny/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from data.image_io import load_image
from modeling.bagel.loader import BagelBundle
from modeling.reference_cases import SINGLE_PASS_TOL, TRAJECTORY_TOL, Check, compare

from .contexts import GuidanceContexts, ImageInputs
from .inferencer import BagelInferencer
from .settings import InferenceSettings, RecordedNoise

_HYPER_KEYS = ("cfg_text_scale", "cfg_img_scale", "cfg_interval", "timestep_shift", "num_timesteps", "cfg_renorm_min",
               "cfg_renorm_type", "max_think_token_n", "do_sample")


def _load(case_dir: Path) -> tuple[dict, dict, dict]:
    case = json.loads((case_dir / "case.json").read_text())
    inputs_path = case_dir / "inputs.safetensors"
    inputs = load_file(str(inputs_path)) if inputs_path.exists() else {}
    return case, inputs, load_file(str(case_dir / "expected.safetensors"))


def _settings(case: dict) -> InferenceSettings:
    hyper = case["inference_hyper"]
    return InferenceSettings.from_dict({**{k: hyper[k] for k in _HYPER_KEYS if k in hyper},
                                        "vae_transform": case["transforms"]["vae_transform"],
                                        "vit_transform": case["transforms"]["vit_transform"]})


def _image_checks(inputs: ImageInputs, expected: dict) -> list[Check]:
    checks = [compare("input_after_vae_resize", torch.from_numpy(np.array(inputs.resized)),
                      expected["input_after_vae_resize"], "uint8")]
    checks.append(compare("vit_pixels", inputs.vit_pixels, expected["vit_pixels"], "abs", SINGLE_PASS_TOL))
    if "vae_pixels" in expected:
        checks.append(compare("vae_pixels", inputs.vae_pixels, expected["vae_pixels"], "abs", SINGLE_PASS_TOL))
    return checks


def _text_checks(inferencer: BagelInferencer, contexts: GuidanceContexts, settings: InferenceSettings, case: dict,
                 expected: dict) -> tuple[list[Check], str]:
    generated = inferencer.generate_text(contexts.cond, settings)
    checks = [compare("text_token_ids", torch.tensor(generated.token_ids), expected["text_token_ids"], "exact"),
              compare("text_step_logits", generated.step_logits, expected["text_step_logits"], "scaled",
                      SINGLE_PASS_TOL)]
    if "text_step_top1_margin" in expected:
        top2 = generated.step_logits.topk(2, dim=-1).values
        checks.append(compare("text_step_top1_margin", top2[:, 0] - top2[:, 1], expected["text_step_top1_margin"],
                              "scaled", SINGLE_PASS_TOL))
    recorded = case.get("recorded", {}).get("text")
    if recorded is not None:
        checks.append(Check("decoded_text", float(generated.text != recorded), 0.0, "exact"))
    return checks, generated.text


def _context_layout_checks(inferencer: BagelInferencer, contexts: GuidanceContexts, grid: tuple[int, int],
                           expected: dict) -> list[Check]:
    """The query layout of the generation step in each branch, as the model's own plan lays it out."""
    special = inferencer.bundle.special_tokens
    checks = []
    for prefix, cache in (("ctx_", contexts.cond), ("ctx_cfg_text_", contexts.text_uncond),
                          ("ctx_cfg_img_", contexts.img_uncond)):
        plan = inferencer.model.plan_image_query([cache], grid)
        index_key = "ctx_packed_indexes" if prefix == "ctx_" else f"{prefix}packed_query_indexes"
        got = {f"{prefix}packed_position_ids": plan.position_ids, index_key: plan.slots,
               f"{prefix}key_values_lens": torch.tensor(plan.cache_lens)}
        if prefix == "ctx_":
            got.update(ctx_packed_text_ids=torch.tensor([special.start_of_image, special.end_of_image]),
                       ctx_packed_vae_position_ids=plan.latent_position_ids,
                       ctx_packed_vae_token_indexes=plan.gen_indexes,
                       ctx_packed_seqlens=torch.tensor([plan.position_ids.numel()]))
        checks += [compare(k, v, expected[k], "exact") for k, v in got.items() if k in expected]
    return checks


def run_inference_case(bundle: BagelBundle, case_dir: Path) -> list[Check]:
    """Every expected tensor must be checked: one this runner does not know fails the case."""
    _, _, expected = _load(case_dir)
    checks = _run_inference_case(bundle, case_dir)
    checked = {c.name for c in checks}
    return checks + [Check(f"{k} (not checked by this runner)", float("inf"), 0.0, "exact")
                     for k in sorted(set(expected) - checked)]


def _run_inference_case(bundle: BagelBundle, case_dir: Path) -> list[Check]:
    case, inputs, expected = _load(case_dir)
    settings = _settings(case)
    hyper = case["inference_hyper"]
    noise = RecordedNoise([(name, inputs[name]) for name in case.get("random_draws", [])], bundle.model.vae2llm.weight.device)
    inferencer = BagelInferencer(bundle, settings)
    image = load_image(case_dir / case["input_image"]) if case.get("input_image") else None
    checks: list[Check] = []

    if hyper.get("understanding_output"):
        contexts = inferencer.new_contexts(settings, for_generation=False)
        checks += _image_checks(contexts.add_image(image, noise), expected)
        contexts.add_text(case["prompt"])
        return checks + _text_checks(inferencer, contexts, settings, case, expected)[0]

    think = bool(hyper.get("think"))
    contexts, image_inputs = inferencer.prepare_edit(image, case["prompt"], settings, think, noise)
    if image_inputs is not None:
        checks += _image_checks(image_inputs, expected)
    if think:
        text_checks, think_text = _text_checks(inferencer, contexts, settings, case, expected)
        checks += text_checks
        reencoded = bundle.tokenizer.encode(think_text, add_special_tokens=False)
        checks.append(compare("think_text_reencoded_ids", torch.tensor(reencoded), expected["think_text_reencoded_ids"],
                              "exact"))
        contexts.add_thinking(think_text)
    image_hw = tuple(hyper["image_shapes"]) if image is None else contexts.image_hw
    stride = bundle.vae.downsample * bundle.config.bagel.latent_patch_size
    checks += _context_layout_checks(inferencer, contexts, (image_hw[0] // stride, image_hw[1] // stride), expected)

    out = inferencer.generate_image(contexts, image_hw, settings, noise, record=True)
    traj = out.trajectory
    checks += [
        compare("flow_timesteps", torch.stack(traj.timesteps), expected["flow_timesteps"], "abs", SINGLE_PASS_TOL),
        compare("flow_x_t", torch.stack(traj.states), expected["flow_x_t"], "abs", TRAJECTORY_TOL),
        compare("flow_velocity", torch.stack(traj.velocities), expected["flow_velocity"], "abs", TRAJECTORY_TOL),
        compare("first_step_velocity", traj.velocities[0], expected["first_step_velocity"], "abs", SINGLE_PASS_TOL),
        compare("final_latent", out.latent_tokens, expected["final_latent"], "abs", TRAJECTORY_TOL),
        compare("output_image", torch.from_numpy(np.array(out.image)), expected["output_image"], "uint8"),
    ]
    for name in ("cond", "cfg_text", "cfg_img"):
        key = f"first_step_raw_velocity_{name}"
        if key in expected or name in out.first_step_branch_velocities:
            got = out.first_step_branch_velocities.get(name, torch.empty(0))
            checks.append(compare(key, got, expected.get(key, torch.empty(0)), "abs", SINGLE_PASS_TOL))
    return checks


INFERENCE_CASES = {name: run_inference_case for name in ("understand", "edit", "think_edit", "t2i")}
