"""YAML mixes: the example configs parse; bad mixes fail with a one-line error naming the problem."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from data.demo_records import demo_metacot, demo_records, random_image_bytes
from data.metacot import TargetStep
from data.mix_config import MixConfigError, load_mix, parse_mix
from data.mix_stream import MixWorkerStream
from data.packing import ConditionDropout, SpecialTokens
from data.parquet_writer import write_parquet_shards
from data.prompts import THINK_GENERATION_SYSTEM_PROMPT
from data.tokenizer_ids import load_tokenizer
from tests.fixture_paths import TINY

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"


def valid() -> dict:
    return {"seed": 1, "groups": {"g": {"datasets": ["metacot_edit"], "weight": 1.0,
                                        "vae_transform": [1024, 512, 16], "vit_transform": [518, 224, 14]}}}


@pytest.mark.parametrize("name", ["meta_cot_sft.yaml", "edit_only.yaml"])
def test_example_mixes_parse(name: str) -> None:
    mix = load_mix(str(CONFIGS / name), check_paths=False)
    assert mix.seed == 42 and mix.budget.expected_num_tokens == 10240 and mix.packing.max_latent_size == 64
    assert all(g.weight > 0 and g.dropout == ConditionDropout(0.1, 0.3, 0.3) for g in mix.groups)


def test_meta_cot_mix_is_the_papers_ratio_with_extra_groups_off() -> None:
    mix = load_mix(str(CONFIGS / "meta_cot_sft.yaml"), check_paths=False)
    assert [g.name for g in mix.groups] == ["edit_cot", "understanding"]
    assert mix.groups[0].datasets == {"metacot_edit_cot": None}
    assert mix.groups[1].datasets == {"metacot_understanding": None}
    assert mix.groups[0].weight / mix.groups[1].weight == 1.5e6 / 100e3  # edit-with-CoT : understanding samples
    assert mix.groups[0].weight + mix.groups[1].weight == 1.0
    assert mix.groups[1].vit_transform.max_pixels == 2007040
    assert mix.disabled_groups == ("shapes_edit_cot", "shapes_edit_understanding", "edit")
    assert mix.budget.max_num_tokens_per_sample <= mix.budget.max_num_tokens


def test_readme_shows_the_meta_cot_mix_as_configured() -> None:
    readme = (CONFIGS.parents[1] / "README.md").read_text()
    block = readme.split("## Data: mixes, registry, scripts", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    shown = yaml.safe_load(block)
    config = yaml.safe_load((CONFIGS / "meta_cot_sft.yaml").read_text())
    assert shown["tokens"] == config["tokens"]
    for name, group in shown["groups"].items():
        configured = config["groups"][name]
        assert group.get("enabled", True) == configured.get("enabled", True), name
        assert group.get("weight", configured["weight"]) == configured["weight"], name


def test_disabled_groups_are_checked_but_not_sampled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METACOT_DATA_ROOT", str(tmp_path))  # no files: a disabled group needs none
    (tmp_path / "metacot" / "edit").mkdir(parents=True)
    (tmp_path / "metacot" / "edit" / "a.parquet").write_bytes(b"")
    mix = valid()
    mix["groups"]["off"] = {**mix["groups"]["g"], "datasets": ["metacot_t2i"], "enabled": False}
    parsed = parse_mix(mix, "mix.yaml")
    assert [g.name for g in parsed.groups] == ["g"] and parsed.disabled_groups == ("off",)
    for change, message in (({"datasets": ["nope"]}, "unknown dataset 'nope'"),
                            ({"enabled": "no"}, "enabled: must be true or false")):
        broken = valid()
        broken["groups"]["off"] = {**mix["groups"]["off"], **change}
        with pytest.raises(MixConfigError, match=message):
            parse_mix(broken, "mix.yaml", check_paths=False)
    mix["groups"]["g"]["enabled"] = False
    with pytest.raises(MixConfigError, match="every group has enabled: false"):
        parse_mix(mix, "mix.yaml")


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


def _longest_fitting(tokenizer, pieces, max_tokens: int, render) -> int:
    """How many of ``pieces`` fit when rendered within ``max_tokens`` tokens."""
    count = 0
    while count < len(pieces) and len(tokenizer.encode(render(pieces[:count + 1]), add_special_tokens=False)) \
            <= max_tokens:
        count += 1
    return count


def test_a_1024px_edit_with_a_long_cot_fits_the_meta_cot_budget(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The worst case the config's comment counts: 1024x1024 source and target, a 256-token instruction and a
    2048-token Meta-CoT, read from the registry's files through the real mix, rendered, measured and packed."""
    tokenizer, special = load_tokenizer(str(TINY))
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(2000)]
    n_words = _longest_fitting(tokenizer, words, 256, " ".join)
    base = demo_metacot(1)
    steps = [TargetStep(f"object {i}", "Replacement", f"paint object {i} a new colour", (10, 20, 300, 400))
             for i in range(400)]

    def cot(chosen: list) -> str:
        return replace(base, traversal=chosen).render(with_think_tags=True)

    n_steps = _longest_fitting(tokenizer, steps, 2048, cot)
    edit = {"id": "worst", "kind": "edit_cot", "instruction": " ".join(words[:n_words]),
            "source_image": random_image_bytes(rng, 1024, 1024), "target_image": random_image_bytes(rng, 1024, 1024),
            "cot": json.dumps(replace(base, traversal=steps[:n_steps]).to_dict())}
    write_parquet_shards([edit], str(tmp_path / "metacot" / "edit_cot"))
    write_parquet_shards(demo_records(1, kinds=("understanding",)), str(tmp_path / "metacot" / "understanding"))
    monkeypatch.setenv("METACOT_DATA_ROOT", str(tmp_path))
    mix = load_mix(str(CONFIGS / "meta_cot_sft.yaml"))
    stream = MixWorkerStream(mix, tokenizer, SpecialTokens.from_dict(special), 0, 1)

    sample, group = stream.next_sample()
    while group != 0:
        sample, group = stream.next_sample()
    texts = [len(tokenizer.encode(t, add_special_tokens=False)) + 2
             for t in (THINK_GENERATION_SYSTEM_PROMPT, edit["instruction"], cot(steps[:n_steps]))]
    expected = 2 * (64 * 64 + 2) + (37 * 37 + 2) + sum(texts)
    assert texts[1] >= 250 and texts[2] >= 2000  # the instruction and CoT really are that long
    n = sample.num_tokens(mix.packing.vit_patch_size, mix.packing.vae_downsample)
    assert n == expected and 10240 < n <= mix.budget.max_num_tokens_per_sample  # BAGEL's 10240 would skip it
    assert "too_long" not in stream.counters.state().get("metacot_edit_cot", {})
    stream.packer.add(sample, ConditionDropout(0.0, 0.0, 0.0))  # packed whole, as the stream packs it
    batch = stream.packer.build()
    assert batch["sample_ids"] == ["worst"] and batch["sequence_length"] == n <= mix.budget.max_num_tokens
    assert [tuple(shape) for shape in batch["patchified_vae_latent_shapes"]] == [(64, 64), (64, 64)]
