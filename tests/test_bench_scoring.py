"""Scorers, reply parsers and aggregation arithmetic, checked against hand-computed numbers."""

from __future__ import annotations

import math
import sys
import types
from typing import Sequence

import pytest

from data.metacot import MetaCoT, TargetStep
from inference.benchmark.aggregate import aggregate
from inference.benchmark.judges.base import ChatJudge, Completion, ReplyParseError
from inference.benchmark.schema import BenchSample
from inference.benchmark.scorers import build_scorer
from inference.benchmark.scorers.base import ScoreRecord
from inference.benchmark.scorers.cec import cec_prompt, score_cec
from inference.benchmark.scorers.parsing import extract_json_object, parse_named_scores, parse_score_list
from inference.benchmark.scorers.shapes_exact import ShapesExactScorer
from inference.benchmark.scorers.viescore import viescore_overall
from tests.test_bench_support import solid


class ScriptedJudge(ChatJudge):
    """In-process judge answering from a list (exercises the real ask/retry logic without HTTP)."""

    def __init__(self, replies: Sequence[str], parse_retries: int = 1):
        super().__init__(None, parse_retries)
        self.replies, self.questions = list(replies), []

    model_id = "scripted"

    def fingerprint(self) -> dict:
        return {"backend": "scripted"}

    def _complete(self, system, parts) -> Completion:
        self.questions.append(list(parts))
        return Completion(self.replies.pop(0))


def sample(sid: str, category: str = "color") -> BenchSample:
    return BenchSample(sid, f"images/{sid}.png", "make the ball red", category)


def test_viescore_arithmetic_by_hand():
    s = viescore_overall([8, 6], [7, 9])
    assert (s["SC"], s["PQ"]) == (6, 7)
    assert s["overall"] == pytest.approx(math.sqrt(42))  # sqrt(6 * 7) = 6.4807
    assert (s["instruction_following"], s["consistency"], s["naturalness"], s["artifacts"]) == (8, 6, 7, 9)


def test_viescore_scorer_asks_sc_then_pq_and_resizes_the_edit():
    judge = ScriptedJudge(['{"score": [4, 9], "reasoning": "a"}', '```json\n{"score": [9, 9], "reasoning": "b"}\n```'])
    record = build_scorer("viescore", judge).score(sample("a"), solid((1, 1, 1), (40, 32)),
                                                   solid((2, 2, 2), (80, 64)), None)
    assert record.status == "ok" and record.overall == pytest.approx(6.0)  # sqrt(min(4,9) * min(9,9))
    sc_question, pq_question = judge.questions
    assert "make the ball red" in sc_question[0] and len(sc_question) == 3 and len(pq_question) == 2
    assert sc_question[2].size == (40, 32)  # edited image resized to the source size, as GEdit does


def test_viescore_failure_is_recorded_not_scored():
    judge = ScriptedJudge(["no idea", "still no idea"])
    record = build_scorer("viescore", judge).score(sample("a"), solid((1, 1, 1)), solid((2, 2, 2)), None)
    assert record.status == "parse_fail" and record.overall is None and record.subscores == {}
    assert record.attempts == 2 and record.replies == ["no idea", "still no idea"]


def test_aggregation_per_sample_then_category_then_macro_and_micro():
    def ok(sid, sc, pq):
        s = viescore_overall(sc, pq)
        return ScoreRecord(sid, "viescore", "j", "ok", overall=s.pop("overall"), subscores=s)

    samples = [sample("a"), sample("b"), sample("c"), sample("d", "style"), sample("e", "style")]
    records = [ok("a", [8, 6], [7, 9]), ok("b", [4, 9], [9, 9]), ScoreRecord("c", "viescore", "j", "parse_fail"),
               ok("d", [10, 10], [4, 1])]  # e was never scored
    agg = aggregate("viescore", samples, records)
    color, style = agg.categories
    # hand: O(a) = sqrt(6*7) = 6.480741, O(b) = sqrt(4*9) = 6, O(d) = sqrt(10*1) = 3.162278
    assert color.means["overall"] == pytest.approx((6.480741 + 6) / 2, abs=1e-6)  # 6.240370
    assert color.means["overall"] != pytest.approx(math.sqrt(5 * 8))  # not sqrt(mean SC * mean PQ) = 6.3246
    assert (color.means["SC"], color.means["PQ"]) == (5, 8)
    assert style.means["overall"] == pytest.approx(3.162278, abs=1e-6)
    assert agg.macro["overall"] == pytest.approx((6.240370 + 3.162278) / 2, abs=1e-6)  # 4.701324
    assert agg.micro["overall"] == pytest.approx((6.480741 + 6 + 3.162278) / 3, abs=1e-6)  # 5.214340
    assert agg.macro["SC"] == pytest.approx(7.5)
    assert (color.n_samples, color.n_scored, color.n_failed, color.n_missing) == (3, 2, 1, 0)
    assert (style.n_samples, style.n_scored, style.n_failed, style.n_missing) == (2, 1, 0, 1)
    assert agg.failure_statuses == {"parse_fail": 1}


def test_imgedit_scores_and_rounding():
    reply = ("Brief reasoning: the chair was replaced cleanly.\nPrompt Compliance: 4\n"
             "**Visual Naturalness**: 3\nPhysical & Detail Integrity: 3")
    judge = ScriptedJudge([reply])
    scorer = build_scorer("imgedit", judge, {"imgedit": {"replace": "Rate: <edit_prompt>. Three scores."}})
    record = scorer.score(sample("a", "replace"), solid((1, 1, 1)), solid((2, 2, 2)), None)
    assert record.status == "ok" and record.overall == 3.33  # round((4 + 3 + 3) / 3, 2)
    assert record.subscores == {"Prompt Compliance": 4, "Visual Naturalness": 3, "Physical & Detail Integrity": 3}
    assert judge.questions[0][0] == "Rate: make the ball red. Three scores."


@pytest.mark.parametrize("text", ["Prompt Compliance: 4\nVisual Naturalness: 3",  # two lines only
                                  "A: 4\nB: 3\nC: 6",  # 6 is off the 1-5 scale
                                  "I refuse."])
def test_imgedit_parser_rejects_off_format_replies(text):
    with pytest.raises(ReplyParseError):
        parse_named_scores(text, 3, 1, 5)


def test_json_extraction_handles_prose_fences_and_braces_in_strings():
    text = 'Sure! {"note": "a {weird} \\"quoted\\" }"} then ```json\n{"score": [3, 10], "reasoning": "x}"}\n```'
    assert extract_json_object(text) == {"note": 'a {weird} "quoted" }'}
    assert parse_score_list('blah {"score": [3, 10], "reasoning": "x}"}', 2, 0, 10) == ([3.0, 10.0], "x}")
    for bad in ('{"score": [3]}', '{"score": [3, 11]}', '{"score": ["a", 2]}', '{"score": [true, 2]}', "[1, 2]"):
        with pytest.raises(ReplyParseError):
            parse_score_list(bad, 2, 0, 10)


def metacot_text() -> str:
    return MetaCoT("Replace", "the red ball", "object recognition", ["Replacement"], "Swap one object.",
                   "Find the ball, put a cube there.",
                   [TargetStep("red ball", "Replacement", "turn into a blue cube", (100, 200, 300, 400))]).render()


def test_cec_prompt_shows_the_parsed_plan_or_the_free_text():
    prompt = cec_prompt(metacot_text())
    assert "Task: Replace" in prompt and "Target: the red ball" in prompt
    assert "- red ball [100, 200, 300, 400]: Replacement, turn into a blue cube" in prompt
    free = cec_prompt("<think>\njust paint it blue\n</think>")
    assert "PLAN:\njust paint it blue\n" in free and "<think>" not in free


def test_cec_score_reward_and_failures():
    result = score_cec(ScriptedJudge(['{"score": 7, "reasoning": "cube is green"}']), solid((1, 1, 1)),
                       solid((2, 2, 2)), metacot_text())
    assert result.status == "ok" and result.score == 7 and result.reward == pytest.approx(0.7)
    assert score_cec(ScriptedJudge([]), solid((1, 1, 1)), solid((2, 2, 2)), None).status == "no_cot"
    failed = score_cec(ScriptedJudge(['{"score": 12}', "??"]), solid((1, 1, 1)), solid((2, 2, 2)), "<think>x</think>")
    assert failed.status == "parse_fail" and failed.reward is None


def test_cec_scorer_records_missing_cot():
    record = build_scorer("cec", ScriptedJudge([])).score(sample("a"), solid((1, 1, 1)), solid((2, 2, 2)), None)
    assert record.status == "no_cot" and record.overall is None


def test_exact_scorer_wraps_shapes_judge(monkeypatch):
    calls = []

    def score_edit(reference, result_image, cot_text):
        calls.append((reference, result_image.size, cot_text))
        return {"placement": 10.0, "colour": 6.0, "overall": 8.0, "explanation": "one shape off"}

    fake = types.ModuleType("data.shapes_edit.judge")
    fake.score_edit = score_edit
    monkeypatch.setitem(sys.modules, "data.shapes_edit.judge", fake)
    ref_sample = BenchSample("s1", "images/s1.png", "move the square", "position", "en", {"target_scene": [1]})
    record = ShapesExactScorer().score(ref_sample, solid((1, 1, 1)), solid((2, 2, 2)), "cot")
    assert record.status == "ok" and record.overall == 8.0
    assert record.subscores == {"placement": 10.0, "colour": 6.0} and record.explanation == "one shape off"
    assert calls == [({"target_scene": [1]}, (40, 32), "cot")]
    assert ShapesExactScorer(score_edit).score(sample("x"), solid((1, 1, 1)), solid((1, 1, 1)), None).status == "error"
