"""Typed run configs: YAML + dotted overrides, type and key checks with clear errors, the shipped SFT configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from train.common.config import ConfigError, from_dict, load_config, save_config, to_dict
from train.sft.config import SFTConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "sft"


@dataclass
class Inner:
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    mode: Literal["a", "b"] = "a"
    name: str | None = None


@dataclass
class Outer:
    steps: int = 10
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def test_yaml_and_overrides_fill_typed_fields(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("steps: 5\ninner: {lr: 1e-3, mode: b}\n")
    cfg = load_config(Outer, str(path), ["inner.lr=2e-5", "flag=true", "inner.betas=[0.5, 0.6]", "inner.name=x"])
    assert cfg == Outer(steps=5, flag=True, inner=Inner(lr=2e-5, betas=[0.5, 0.6], mode="b", name="x"))
    assert isinstance(cfg.inner.lr, float)


@pytest.mark.parametrize("override, message", [
    ("inner.lrr=1", r"unknown config key\(s\) \['inner.lrr'\]"),
    ("steps=ten", "steps must be an integer"),
    ("flag=1", "flag must be true or false"),
    ("inner.mode=c", r"inner.mode='c' is not allowed; choose one of \['a', 'b'\]"),
    ("inner.betas=0.9", "inner.betas must be a list"),
    ("steps", "not of the form key.sub=value"),
])
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(Outer, None, [override])


def test_validate_hooks_run_with_their_section() -> None:
    with pytest.raises(ConfigError, match=r"optim: need 0 <= optim.min_lr <= optim.lr"):
        from_dict(SFTConfig, {"model": {"model_dir": "x"}, "data": {"mix": "m.yaml"}, "optim": {"min_lr": 1.0}})
    with pytest.raises(ConfigError, match="exactly one of model.model_dir"):
        from_dict(SFTConfig, {"data": {"mix": "m.yaml"}})


@pytest.mark.parametrize("name", ["meta_cot.yaml", "edit_only.yaml", "tiny_cpu.yaml", "random_7b_scaling.yaml"])
def test_shipped_configs_load_and_round_trip(name: str, tmp_path) -> None:
    cfg = load_config(SFTConfig, str(CONFIGS / name))
    saved = tmp_path / "config.yaml"
    save_config(cfg, str(saved))
    assert load_config(SFTConfig, str(saved)) == cfg
    assert to_dict(cfg)["optim"]["betas"] == [0.9, 0.95]


def test_meta_cot_config_is_the_paper_scale() -> None:
    cfg = load_config(SFTConfig, str(CONFIGS / "meta_cot.yaml"))
    assert cfg.train.total_steps == 10000 and cfg.parallel.shard_group_size == 8
    assert cfg.data.mix == "data/configs/meta_cot_sft.yaml" and cfg.optim.lr == 2e-5
