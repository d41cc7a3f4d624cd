"""Rewards by name: ``reward.kind`` in the run config picks a module of this package, imported only when used.

Each reward module exposes ``build(settings: dict) -> RewardFunction`` (``base.py``); ``settings`` is the config's
``reward.settings`` mapping. A reward may also offer ``submit(requests) -> Future[list[RewardResult]]``: the trainer
then scores a group while it generates the next one.
"""

from __future__ import annotations

import importlib

from train.rl.rewards.base import RewardFunction

REWARD_MODULES = {
    "programmatic": "train.rl.rewards.programmatic",  # closed-form image statistics (checks, tests)
    "cec": "train.rl.rewards.cec",  # a VLM scores how well the edit agrees with the CoT (Meta-CoT stage 2)
    "shapes_exact": "train.rl.rewards.shapes_exact",  # ShapesEdit's exact CoT-consistency judge
    "mix": "train.rl.rewards.mix",  # a weighted sum of rewards
}


class RewardConfigError(ValueError):
    """The configured reward cannot be built; the message says which kind and how to fix it."""


def build_reward(kind: str, settings: dict | None = None) -> RewardFunction:
    if kind not in REWARD_MODULES:
        raise RewardConfigError(f"unknown reward kind {kind!r}; choose one of {sorted(REWARD_MODULES)}")
    module_name = REWARD_MODULES[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise  # the reward's own dependency is missing: let its message through
        raise RewardConfigError(f"reward kind {kind!r} is not installed in this checkout (no module "
                                f"{module_name}); use another reward.kind") from e
    try:
        return module.build(dict(settings or {}))
    except TypeError as e:
        raise RewardConfigError(f"reward.settings for kind {kind!r} do not fit: {e}") from e
