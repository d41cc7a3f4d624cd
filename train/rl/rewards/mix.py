"""A weighted mix of named rewards: score = sum(w_i * s_i) / sum(w_i) over the components that scored.

Dividing by the weights keeps the judges' 0-10 scale. A sample is dropped when any *required* component dropped it;
an optional component that fails is left out of that sample's mix (its weight too). Every component's score (and
its own components, as ``name/part``) is kept in the result for logging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from train.rl.rewards.base import RewardFunction, RewardRequest, RewardResult


@dataclass
class MixComponent:
    name: str
    reward: RewardFunction
    weight: float
    required: bool = True

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise ValueError(f"mix component {self.name!r}: weight must be > 0, got {self.weight}")


def mix_results(components: Sequence[MixComponent], per_component: Sequence[Sequence[RewardResult]],
                index: int) -> RewardResult:
    """The mixed result of sample ``index`` from every component's results."""
    logged: dict[str, float] = {}
    total, weights, errors, required_failed = 0.0, 0.0, [], False
    for component, results in zip(components, per_component):
        result = results[index]
        if result.score is None:
            errors.append(f"{component.name}: {result.error}")
            required_failed |= component.required
            continue
        logged[component.name] = result.score
        logged.update({f"{component.name}/{k}": v for k, v in result.components.items()})
        total += component.weight * result.score
        weights += component.weight
    error = "; ".join(errors) or None
    if required_failed or weights == 0:
        return RewardResult(None, logged, error)
    return RewardResult(total / weights, logged, error)


class MixReward:
    name = "mix"

    def __init__(self, components: Sequence[MixComponent]):
        names = [c.name for c in components]
        if not components or len(set(names)) != len(names):
            raise ValueError(f"mix needs at least one component and distinct names, got {names}")
        self.components = list(components)

    def __call__(self, requests: Sequence[RewardRequest]) -> list[RewardResult]:
        per_component = []
        for component in self.components:
            results = component.reward(requests)
            if len(results) != len(requests):
                raise RuntimeError(f"reward {component.name!r} returned {len(results)} results "
                                   f"for {len(requests)} requests")
            per_component.append(results)
        return [mix_results(self.components, per_component, i) for i in range(len(requests))]


def build_mix_reward(components: Sequence[dict],
                     build: Callable[[str, dict], RewardFunction] | None = None) -> MixReward:
    """``components``: ``[{kind, weight: 1.0, settings: {}, name: kind, required: true}, ...]``."""
    if build is None:
        from train.rl.rewards.registry import build_reward as build
    built = []
    for i, spec in enumerate(components):
        unknown = set(spec) - {"kind", "weight", "settings", "name", "required"}
        if "kind" not in spec or unknown:
            raise ValueError(f"mix component {i} needs 'kind' and only kind/weight/settings/name/required; "
                             f"got {sorted(spec)}")
        built.append(MixComponent(spec.get("name", spec["kind"]), build(spec["kind"], dict(spec.get("settings", {}))),
                                  float(spec.get("weight", 1.0)), bool(spec.get("required", True))))
    return MixReward(built)
