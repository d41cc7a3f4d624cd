"""Loading the official layout strictly, exporting back to it, and the errors a broken folder gets."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from modeling.bagel.config import CheckpointError
from modeling.bagel.loader import export_bagel, load_bagel
from tests.fixture_paths import TINY


def _copy_fixture(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(TINY, folder, ignore=shutil.ignore_patterns("cases"))
    return folder


def test_export_round_trip_is_exact(tiny_bundle, tmp_path):
    out = export_bagel(tiny_bundle, tmp_path / "exported")
    again = load_bagel(out)
    ours, theirs = tiny_bundle.model.state_dict(), again.model.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    ae_ours, ae_theirs = tiny_bundle.vae.official_state_dict(), again.vae.official_state_dict()
    assert all(torch.equal(ae_ours[k], ae_theirs[k]) for k in ae_ours)
    assert again.special_tokens == tiny_bundle.special_tokens
    assert again.config.vit.num_hidden_layers == tiny_bundle.config.vit.num_hidden_layers
    assert again.config.bagel == tiny_bundle.config.bagel and again.config.ae == tiny_bundle.config.ae
    assert sorted(p.name for p in (tmp_path).iterdir()) == ["exported"]  # no temporary folder left


def test_tokenizer_ids_match_official_derivation(tiny_bundle):
    expected = json.loads((TINY / "special_token_ids.json").read_text())["new_token_ids"]
    s = tiny_bundle.special_tokens
    assert (s.bos, s.eos, s.start_of_image, s.end_of_image) == (
        expected["bos_token_id"], expected["eos_token_id"], expected["start_of_image"], expected["end_of_image"])


@pytest.mark.parametrize("missing", ["ema.safetensors", "ae.safetensors", "llm_config.json", "vit_config.json"])
def test_missing_file_is_named(tmp_path, missing):
    folder = _copy_fixture(tmp_path)
    (folder / missing).unlink()
    with pytest.raises(CheckpointError, match=missing.replace(".", r"\.")) as err:
        load_bagel(folder)
    assert "download" in str(err.value)


def test_wrong_shapes_are_listed(tmp_path):
    folder = _copy_fixture(tmp_path)
    config = json.loads((folder / "llm_config.json").read_text())
    config["intermediate_size"] = 96
    (folder / "llm_config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"wrong shape.*mlp") as err:
        load_bagel(folder)
    assert "ema.safetensors" in str(err.value)


def test_config_field_of_wrong_type(tmp_path):
    folder = _copy_fixture(tmp_path)
    config = json.loads((folder / "vit_config.json").read_text())
    config["hidden_size"] = "32"
    (folder / "vit_config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"vit_config\.json: field 'hidden_size' is '32' \(str\), expected int"):
        load_bagel(folder)


def test_damaged_weights_file(tmp_path):
    folder = _copy_fixture(tmp_path)
    (folder / "ema.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="damaged"):
        load_bagel(folder)


def test_fresh_position_tables_equal_the_stored_ones(tiny_bundle):
    from modeling.bagel.loader import build_bagel

    fresh = build_bagel(tiny_bundle.config, "cpu", init_seed=0)
    for name in ("latent_pos_embed", "vit_pos_embed"):
        assert torch.equal(getattr(fresh, name).pos_embed, getattr(tiny_bundle.model, name).pos_embed)
