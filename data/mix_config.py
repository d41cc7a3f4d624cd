"""A YAML dataset mix, parsed into typed, validated settings (see ``data/configs/*.yaml`` for the format).

    seed: 42                       # data seed (shuffles, group sampling, dropout, timesteps)
    max_consecutive_skips: 5000    # a worker that skips this many rows in a row stops with one line saying why
    tokens: {expected_num_tokens: 10240, max_num_tokens: 11520, max_num_tokens_per_sample: 10240}
    packing: {vit_max_num_patch_per_side: 70, max_latent_size: 64}   # any PackingConfig field
    groups:
      edit_cot:                    # a group: datasets sampled together, with one weight and one set of transforms
        datasets: {metacot_edit_cot: null}   # registry name -> number of samples used (null: all); or a list
        weight: 0.6                # relative sampling weight (> 0)
        vae_transform: [1024, 512, 16]       # [max_size, min_size, stride], optional 4th: max_pixels
        vit_transform: [518, 224, 14]
        condition_dropout: {text: 0.1, vit: 0.3, vae: 0.3}
        shuffle_seed: 42           # optional, default: the mix seed
        think_system_prompt: true  # thinking edits get BAGEL's planning system prompt (as at inference)
        enabled: true              # optional; false keeps the group in the file, checked, but out of the mix
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import yaml

from data.dataset_info import DatasetInfo, get_dataset, resolve
from data.packing import ConditionDropout, PackingConfig
from data.sources.base import expand_paths
from data.transforms import ImageTransform


# skipped rows in a row before a data worker stops: a filter that keeps 1 row in 1000 still passes (p < 0.01)
DEFAULT_MAX_CONSECUTIVE_SKIPS = 5000


class MixConfigError(ValueError):
    """The YAML mix is invalid; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class TransformSpec:
    max_size: int
    min_size: int
    stride: int
    max_pixels: int | None = None

    def build(self) -> ImageTransform:
        return ImageTransform(self.max_size, self.min_size, self.stride, self.max_pixels)


@dataclass(frozen=True)
class TokenBudget:
    expected_num_tokens: int = 10240  # a batch is emitted once it holds this many tokens
    max_num_tokens: int = 11520  # hard cap per batch
    max_num_tokens_per_sample: int = 10240  # longer samples are skipped and counted


@dataclass(frozen=True)
class GroupConfig:
    name: str
    datasets: dict[str, int | None]
    weight: float
    vae_transform: TransformSpec
    vit_transform: TransformSpec
    dropout: ConditionDropout
    shuffle_seed: int
    shuffle: bool = True
    think_system_prompt: bool = True
    # registry entries with paths resolved at parse time, so workers need no registry (or env) of their own
    infos: dict[str, DatasetInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class MixConfig:
    groups: list[GroupConfig]  # the enabled groups, in file order
    budget: TokenBudget
    packing: PackingConfig
    seed: int
    disabled_groups: tuple[str, ...] = ()  # groups with ``enabled: false`` (validated, never sampled)
    max_consecutive_skips: int = DEFAULT_MAX_CONSECUTIVE_SKIPS


GROUP_KEYS = {"datasets", "weight", "vae_transform", "vit_transform", "condition_dropout", "shuffle_seed",
              "shuffle", "think_system_prompt", "enabled"}
TOP_KEYS = {"seed", "tokens", "packing", "groups", "max_consecutive_skips"}


def _typed(cls: type, values: Any, where: str) -> Any:
    if values is None:
        return cls()
    allowed = {f.name for f in fields(cls)}
    if not isinstance(values, dict) or set(values) - allowed:
        raise MixConfigError(f"{where}: expected a mapping with keys among {sorted(allowed)}, got {values!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise MixConfigError(f"{where}: {e}") from e


def _transform(value: Any, where: str) -> TransformSpec:
    if not isinstance(value, list) or len(value) not in (3, 4) or not all(isinstance(v, int) for v in value):
        raise MixConfigError(f"{where}: expected [max_size, min_size, stride] (optionally max_pixels), got {value!r}")
    try:
        ImageTransform(*value)  # validates the numbers
    except ValueError as e:
        raise MixConfigError(f"{where}: {e}") from e
    return TransformSpec(*value)


def _datasets(value: Any, where: str, check_paths: bool) -> tuple[dict[str, int | None], dict[str, DatasetInfo]]:
    names = dict.fromkeys(value) if isinstance(value, list) else value
    if not isinstance(names, dict) or not names:
        raise MixConfigError(f"{where}: list the registry names, or map each to its number of samples used")
    infos = {}
    for name, used in names.items():
        try:
            info = get_dataset(name)
        except KeyError as e:
            raise MixConfigError(f"{where}: {e.args[0]}") from e
        info = replace(info, paths=tuple(resolve(p) for p in info.paths),
                       image_root=resolve(info.image_root) if info.image_root else None)
        infos[name] = info
        if used is not None and (not isinstance(used, int) or used <= 0):
            raise MixConfigError(f"{where}.{name}: number of samples used must be a positive integer or null")
        if check_paths:
            try:
                expand_paths(list(info.paths), (f".{info.format}",))
            except FileNotFoundError as e:
                raise MixConfigError(f"{where}.{name}: {e} (METACOT_DATA_ROOT or the registry entry)") from e
    return names, infos


def _group(name: str, spec: Any, seed: int, where: str, check_paths: bool) -> GroupConfig:
    if not isinstance(spec, dict):
        raise MixConfigError(f"{where}: a group is a mapping with keys {sorted(GROUP_KEYS)}")
    unknown = set(spec) - GROUP_KEYS
    if unknown:
        raise MixConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(GROUP_KEYS)}")
    for key in ("datasets", "weight", "vae_transform", "vit_transform"):
        if key not in spec:
            raise MixConfigError(f"{where}: missing '{key}'")
    weight = spec["weight"]
    if not isinstance(weight, (int, float)) or weight <= 0:
        raise MixConfigError(f"{where}.weight: must be a number > 0, got {weight!r} (turn a group off with "
                             "enabled: false)")
    datasets, infos = _datasets(spec["datasets"], f"{where}.datasets", check_paths)
    return GroupConfig(
        name=name,
        datasets=datasets,
        infos=infos,
        weight=float(weight),
        vae_transform=_transform(spec["vae_transform"], f"{where}.vae_transform"),
        vit_transform=_transform(spec["vit_transform"], f"{where}.vit_transform"),
        dropout=_typed(ConditionDropout, spec.get("condition_dropout"), f"{where}.condition_dropout"),
        shuffle_seed=int(spec.get("shuffle_seed", seed)),
        shuffle=bool(spec.get("shuffle", True)),
        think_system_prompt=bool(spec.get("think_system_prompt", True)),
    )


def parse_mix(raw: Any, origin: str = "<mix>", check_paths: bool = True) -> MixConfig:
    if not isinstance(raw, dict) or not isinstance(raw.get("groups"), dict) or not raw["groups"]:
        raise MixConfigError(f"{origin}: a mix needs a non-empty 'groups' mapping")
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise MixConfigError(f"{origin}: unknown key(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    seed = int(raw.get("seed", 42))
    budget = _typed(TokenBudget, raw.get("tokens"), f"{origin}: tokens")
    if max(budget.max_num_tokens_per_sample, budget.expected_num_tokens) > budget.max_num_tokens:
        raise MixConfigError(f"{origin}: tokens need max_num_tokens_per_sample <= max_num_tokens "
                             "and expected_num_tokens <= max_num_tokens")
    max_skips = raw.get("max_consecutive_skips", DEFAULT_MAX_CONSECUTIVE_SKIPS)
    if not isinstance(max_skips, int) or isinstance(max_skips, bool) or max_skips < 1:
        raise MixConfigError(f"{origin}: max_consecutive_skips must be a positive integer, got {max_skips!r}")
    groups, disabled = [], []
    for name, spec in raw["groups"].items():
        enabled = spec.get("enabled", True) if isinstance(spec, dict) else True
        if not isinstance(enabled, bool):
            raise MixConfigError(f"{origin}: groups.{name}.enabled: must be true or false, got {enabled!r}")
        # a disabled group is checked like the others, except for files it may not have downloaded
        group = _group(name, spec, seed, f"{origin}: groups.{name}", check_paths and enabled)
        (groups if enabled else disabled).append(group)
    if not groups:
        raise MixConfigError(f"{origin}: every group has enabled: false; enable at least one")
    return MixConfig(groups, budget, _typed(PackingConfig, raw.get("packing"), f"{origin}: packing"), seed,
                     tuple(g.name for g in disabled), max_skips)


def load_mix(path: str, check_paths: bool = True) -> MixConfig:
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except OSError as e:
        raise MixConfigError(f"cannot read mix {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise MixConfigError(f"{path}: not valid YAML: {e}") from e
    return parse_mix(raw, path, check_paths)
