"""Model-level reference cases (``vae``, ``vit``, ``train_forward``) of a fixture set, and the shared comparisons.

Fixture format: ``../shared/reference/bagel-tiny/README.md``. Each case function takes the loaded bundle and the case
folder and returns one ``Check`` per expected tensor. Tolerances are the README's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from modeling.bagel.config import config_from_reference_json
from modeling.bagel.loader import BagelBundle, build_bagel
from modeling.bagel.state_dict_adapter import model_shapes
from modeling.vae.autoencoder import official_ae_shapes

SINGLE_PASS_TOL = 1e-4
TRAJECTORY_TOL = 1e-3
GRAD_NORM_REL_TOL = 1e-3


@dataclass
class Check:
    name: str
    error: float
    tolerance: float
    kind: str  # "abs", "scaled" (abs / max(1, |expected|)), "rel", "exact", "uint8"

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance


def compare(name: str, actual: torch.Tensor, expected: torch.Tensor, kind: str, tolerance: float = 0.0) -> Check:
    actual = torch.as_tensor(actual).detach().cpu()
    if tuple(actual.shape) != tuple(expected.shape):
        return Check(f"{name} shape {tuple(actual.shape)} != {tuple(expected.shape)}", float("inf"), tolerance, kind)
    if kind == "exact":
        return Check(name, float((actual.long() != expected.long()).sum()), 0.0, kind)
    if kind == "uint8":
        diff = (actual.long() - expected.long()).abs()
        return Check(name, float(diff.max()) if diff.numel() else 0.0, 1.0, kind)
    a, e = actual.double(), expected.double()
    if kind == "rel":
        err = ((a - e).abs() / e.abs().clamp_min(1e-12)).max()
    elif kind == "scaled":
        err = ((a - e).abs() / e.abs().clamp_min(1.0)).max()
    else:
        err = (a - e).abs().max()
    return Check(name, float(err) if a.numel() else 0.0, tolerance, kind)


def run_vae_case(bundle: BagelBundle, case_dir: Path) -> list[Check]:
    inputs, expected = load_file(str(case_dir / "inputs.safetensors")), load_file(str(case_dir / "expected.safetensors"))
    vae = bundle.vae
    with torch.no_grad():
        pixels = inputs["image"][None].to(vae.model.device)
        moments = vae.encode_moments(pixels)[0]
        latent = vae.encode(pixels, sample=False)[0]
        decoded = vae.decode(latent[None])[0]
    return [compare("encoder_moments", moments, expected["encoder_moments"], "abs", SINGLE_PASS_TOL),
            compare("latent", latent, expected["latent"], "abs", SINGLE_PASS_TOL),
            compare("decoded", decoded, expected["decoded"], "abs", SINGLE_PASS_TOL)]


def run_vit_case(bundle: BagelBundle, case_dir: Path) -> list[Check]:
    inputs, expected = load_file(str(case_dir / "inputs.safetensors")), load_file(str(case_dir / "expected.safetensors"))
    model = bundle.model
    dev = model.vae2llm.weight.device
    patches = inputs["packed_pixel_values"].to(dev)
    pos = inputs["packed_position_ids"].long().to(dev)
    seqlens = [int(n) for n in inputs["vit_token_seqlens"]]
    with torch.no_grad():
        hidden = model.vit_model(patches, pos, seqlens)
        connected = model.connector(hidden)
        tokens = connected + model.vit_pos_embed(pos)
    return [compare("vit_last_hidden_state", hidden, expected["vit_last_hidden_state"], "abs", SINGLE_PASS_TOL),
            compare("connector_output", connected, expected["connector_output"], "abs", SINGLE_PASS_TOL),
            compare("vit_token_embeddings", tokens, expected["vit_token_embeddings"], "abs", SINGLE_PASS_TOL)]


def train_batch_from_case(case_dir: Path, device: torch.device | str = "cpu") -> dict:
    """The fixture's packed batch in the form ``Bagel.forward_train`` takes (VAE encoding already recorded)."""
    case = json.loads((case_dir / "case.json").read_text())
    batch = {k: v.to(device) for k, v in load_file(str(case_dir / "inputs.safetensors")).items()
             if not k.startswith("attention_mask_sample")}
    batch.update(sequence_length=case["sequence_length"], sample_lens=case["sample_lens"],
                 split_lens=[n for s in case["split_lens_per_sample"] for n in s],
                 attn_modes=[m for s in case["attn_modes_per_sample"] for m in s],
                 patchified_vae_latent_shapes=[tuple(s) for s in case["patchified_vae_latent_shapes"]])
    return batch


def run_train_forward_case(bundle: BagelBundle, case_dir: Path) -> list[Check]:
    case = json.loads((case_dir / "case.json").read_text())
    expected = load_file(str(case_dir / "expected.safetensors"))
    model = bundle.model
    batch = train_batch_from_case(case_dir, model.vae2llm.weight.device)
    if abs(case["timestep_shift"] - model.config.bagel.timestep_shift) > 1e-12:
        raise ValueError(f"case timestep_shift {case['timestep_shift']} differs from the checkpoint's "
                         f"{model.config.bagel.timestep_shift} (bagel_config.json)")
    params = dict(model.named_parameters())
    was_training = model.training
    requires = {n: p.requires_grad for n, p in params.items()}
    model.train()
    for n in case["grad_param_names"]:
        params[n].requires_grad_(True)
    model.zero_grad(set_to_none=True)
    try:
        losses = model.forward_train(batch)
        loss = losses.ce.mean() + losses.mse.mean()
        loss.backward()
        grad_norms = torch.stack([params[n].grad.double().norm() for n in case["grad_param_names"]])
    finally:
        model.zero_grad(set_to_none=True)
        for n, p in params.items():
            p.requires_grad_(requires[n])
        model.train(was_training)
    return [compare("ce", losses.ce, expected["ce"], "scaled", SINGLE_PASS_TOL),
            compare("mse", losses.mse, expected["mse"], "scaled", SINGLE_PASS_TOL),
            compare("loss", loss.reshape(1), expected["loss"], "abs", SINGLE_PASS_TOL),
            compare("grad_norms", grad_norms, expected["grad_norms"], "rel", GRAD_NORM_REL_TOL)]


MODEL_CASES = {"vae": run_vae_case, "vit": run_vit_case, "train_forward": run_train_forward_case}


def key_list_differences(keys_json: Path, configs_json: Path) -> tuple[int, list[str]]:
    """Build the full model on the meta device from ``configs_json`` and compare every checkpoint file's keys and
    shapes with ``keys_json``. Returns (number of keys compared, differences)."""
    reference = json.loads(Path(keys_json).read_text())
    config = config_from_reference_json(configs_json)
    ours = {"ema.safetensors": model_shapes(build_bagel(config, "meta")),
            "ae.safetensors": official_ae_shapes(config.ae)}
    diffs, compared = [], 0
    for file_name, entry in reference.items():
        if file_name not in ours:
            diffs.append(f"{file_name}: no such file in the model")
            continue
        expected = {k: tuple(v) for k, v in entry["keys"].items()}
        got = ours[file_name]
        compared += len(expected)
        diffs += [f"{file_name}: missing {k} {expected[k]}" for k in sorted(set(expected) - set(got))]
        diffs += [f"{file_name}: unexpected {k} {got[k]}" for k in sorted(set(got) - set(expected))]
        diffs += [f"{file_name}: {k} has shape {got[k]}, expected {expected[k]}"
                  for k in sorted(set(got) & set(expected)) if got[k] != expected[k]]
    return compared, diffs
