"""Rewards by name: ``build_reward(cfg.reward.kind, cfg.reward.settings)``.

Each kind names the factory that takes its settings as keyword arguments; its module is imported only when that
kind is built (the programmatic rewards, the judges' SDK and the ShapesEdit judge stay unloaded otherwise).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from train.rl.rewards.base import RewardFunction

FACTORIES: dict[str, str] = {
    "programmatic": "train.rl.rewards.programmatic:ProgrammaticReward",
    "cec": "train.rl.rewards.cec:build_cec_reward",
    "shapes_exact": "train.rl.rewards.shapes_exact:ShapesExactReward",
    "mix": "train.rl.rewards.mix:build_mix_reward",
}
REWARD_KINDS: tuple[str, ...] = tuple(FACTORIES)


class RewardConfigError(ValueError):
    """The configured reward cannot be built; the message says which kind and how to fix it."""


def _factory(kind: str) -> Any:
    if kind not in FACTORIES:
        raise RewardConfigError(f"reward kind {kind!r} unknown; choose from {', '.join(REWARD_KINDS)}")
    module, attr = FACTORIES[kind].split(":")
    return getattr(importlib.import_module(module), attr)


def _accepted(factory: Any) -> list[str] | None:
    """Keyword names the factory accepts; None when it takes ``**settings`` and checks them itself."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = list(inspect.signature(target).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def build_reward(kind: str, settings: dict) -> RewardFunction:
    factory = _factory(kind)
    accepted = _accepted(factory)
    unknown = sorted(set(settings or {}) - set(accepted)) if accepted is not None else []
    if unknown:
        raise RewardConfigError(f"reward {kind!r}: unknown setting(s) {unknown}; accepted: {', '.join(accepted)}")
    return factory(**(settings or {}))
