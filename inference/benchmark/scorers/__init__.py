"""Scorers: turn (sample, source, edited image, CoT) into a ``ScoreRecord`` with a judge."""

from __future__ import annotations

from inference.benchmark.judges.base import ChatJudge
from inference.benchmark.scorers.base import Scorer, ScoreRecord
from inference.benchmark.scorers.cec import CECScorer
from inference.benchmark.scorers.imgedit import ImgEditScorer
from inference.benchmark.scorers.shapes_exact import ShapesExactScorer
from inference.benchmark.scorers.viescore import VIEScoreScorer

CHAT_SCORERS = {"viescore": VIEScoreScorer, "imgedit": ImgEditScorer, "cec": CECScorer}
SCORER_NAMES: tuple[str, ...] = (*CHAT_SCORERS, "exact")


def build_scorer(name: str, judge: ChatJudge | None, judge_prompts: dict | None = None) -> Scorer:
    if name == "exact":
        return ShapesExactScorer()
    if name not in CHAT_SCORERS:
        raise ValueError(f"unknown scorer {name!r}; choose from {', '.join(SCORER_NAMES)}")
    if judge is None:
        raise ValueError(f"scorer {name!r} needs a chat judge; pass --judge openai or --judge qwen_local")
    return CHAT_SCORERS[name](judge, judge_prompts)


__all__ = ["Scorer", "ScoreRecord", "build_scorer", "SCORER_NAMES"]
