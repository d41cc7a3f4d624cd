"""YAML mixes: the example configs parse; bad mixes fail with a one-line error naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from data.mix_config import MixConfigError, load_mix, parse_mix
from data.packing import ConditionDropout

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"


def valid() -> dict:
    return {"seed": 1, "groups": {"g": {"datasets": ["metacot_edit"], "weight": 1.0,
                                        "vae_transform": [1024, 512, 16], "vit_transform": [518, 224, 14]}}}


@pytest.mark.parametrize("name", ["meta_cot_sft.yaml", "edit_only.yaml"])
def test_example_mixes_parse(name: str) -> None:
    mix = load_mix(str(CONFIGS / name), check_paths=False)
    assert mix.seed == 42 and mix.budget.max_num_tokens == 11520 and mix.packing.max_latent_size == 64
    assert all(g.weight > 0 and g.dropout == ConditionDropout(0.1, 0.3, 0.3) for g in mix.groups)


def test_meta_cot_mix_groups() -> None:
    mix = load_mix(str(CONFIGS / "meta_cot_sft.yaml"), check_paths=False)
    assert [g.name for g in mix.groups] == ["edit_cot", "understanding", "edit"]
    assert mix.groups[0].datasets == {"metacot_edit_cot": None, "shapes_edit_cot": None}
    assert mix.groups[1].vit_transform.max_pixels == 2007040


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["groups"]["g"].update(datasets=["nope"]), "unknown dataset 'nope'"),
    (lambda m: m["groups"]["g"].update(weight=0), "weight: must be a number > 0"),
    (lambda m: m["groups"]["g"].update(weight=-2.5), "weight: must be a number > 0"),
    (lambda m: m["groups"]["g"].pop("vit_transform"), "missing 'vit_transform'"),
    (lambda m: m["groups"]["g"].update(vae_transform=[512, 1024, 16]), "need 0 < min <= max"),
    (lambda m: m["groups"]["g"].update(vae_transform=[1024, 512]), "expected [max_size, min_size, stride]"),
    (lambda m: m["groups"]["g"].update(wieght=1), "unknown key(s) ['wieght']"),
    (lambda m: m["groups"]["g"].update(condition_dropout={"text": 2}), "must be in [0, 1]"),
    (lambda m: m["groups"]["g"].update(datasets={"metacot_edit": -1}), "positive integer or null"),
    (lambda m: m.update(tokens={"max_num_tokens": 10, "expected_num_tokens": 100}), "expected_num_tokens <="),
    (lambda m: m.update(groups={}), "non-empty 'groups'"),
])
def test_bad_mixes_fail_clearly(change, message: str) -> None:
    mix = valid()
    change(mix)
    with pytest.raises(MixConfigError) as err:
        parse_mix(mix, "mix.yaml", check_paths=False)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_dataset_files_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METACOT_DATA_ROOT", str(tmp_path))
    with pytest.raises(MixConfigError, match=r"groups\.g\.datasets\.metacot_edit: no \.parquet files at"):
        parse_mix(valid(), "mix.yaml")
    (tmp_path / "metacot" / "edit").mkdir(parents=True)
    (tmp_path / "metacot" / "edit" / "a.parquet").write_bytes(b"x")
    assert parse_mix(valid(), "mix.yaml").groups[0].datasets == {"metacot_edit": None}


def test_unreadable_yaml(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("groups: [unclosed")
    with pytest.raises(MixConfigError, match="not valid YAML"):
        load_mix(str(tmp_path / "bad.yaml"))
    with pytest.raises(MixConfigError, match="cannot read mix"):
        load_mix(str(tmp_path / "absent.yaml"))
    assert yaml.safe_load((CONFIGS / "edit_only.yaml").read_text())["groups"]["edit"]["weight"] == 1.0
