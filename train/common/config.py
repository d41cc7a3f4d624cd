"""Typed run configs: nested dataclasses filled from YAML plus dotted command-line overrides.

    cfg = load_config(SFTConfig, "configs/sft/tiny_cpu.yaml", ["optim.lr=1e-5", "train.total_steps=20"])

Every value is checked against its field's type annotation (int, float, bool, str, Literal, Optional,
list, dict, nested dataclass); unknown keys and wrong types raise ``ConfigError`` naming the dotted key
and the fix. A dataclass may define ``validate(self)`` for cross-field checks; it runs after loading.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the fix."""


def load_config(cls: type[T], path: str | None = None, overrides: list[str] | None = None) -> T:
    """Read ``path`` (YAML, may be None), apply ``key.sub=value`` overrides, build and validate ``cls``."""
    raw: dict[str, Any] = {}
    if path is not None:
        if not os.path.isfile(path):
            raise ConfigError(f"config file {path!r} not found; pass an existing YAML file")
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path!r} must hold a mapping at top level, got {type(raw).__name__}")
    for item in overrides or []:
        apply_override(raw, item)
    return from_dict(cls, raw)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``a.b.c=value`` in the nested dict ``raw``; the value is parsed as YAML (``1e-5``, ``[1, 2]``, ``null``)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form key.sub=value (e.g. optim.lr=1e-5)")
    value = yaml.safe_load(text) if text.strip() else ""
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def from_dict(cls: type[T], raw: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``raw``, checking keys and types; then run ``validate()`` hooks."""
    obj = _build_dataclass(cls, raw, prefix)
    _run_validators(obj, prefix)
    return obj


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config (YAML-serialisable)."""
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def save_config(cfg: Any, path: str) -> None:
    """Write the config as YAML atomically (tmp file then rename)."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(to_yaml(cfg))
    os.replace(tmp, path)


def _build_dataclass(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping of fields, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        where = prefix or "top level"
        raise ConfigError(f"unknown config key(s) {[_join(prefix, k) for k in unknown]} at {where}; "
                          f"known keys: {sorted(fields)}")
    kwargs = {}
    for name, field in fields.items():
        key = _join(prefix, name)
        if name in raw:
            kwargs[name] = _convert(hints[name], raw[name], key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            if dataclasses.is_dataclass(hints[name]):
                kwargs[name] = _build_dataclass(hints[name], {}, key)
            else:
                raise ConfigError(f"missing required config key {key!r}; set it in the YAML or as {key}=...")
    return cls(**kwargs)


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}={value!r} matches none of {args}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}={value!r} is not allowed; choose one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        val_tp = args[1] if args else Any
        return {str(k): _convert(val_tp, v, f"{key}.{k}") for k, v in value.items()}
    return _convert_scalar(tp, value, key)


def _convert_scalar(tp: Any, value: Any, key: str) -> Any:
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if tp is float:
        # YAML reads "1e-5" (no dot) as a string; accept it when it parses as a number.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {tp!r} in the config class")


def _run_validators(obj: Any, prefix: str) -> None:
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if dataclasses.is_dataclass(value):
            _run_validators(value, _join(prefix, field.name))
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as e:
            raise ConfigError(f"{prefix}: {e}" if prefix else str(e)) from None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
