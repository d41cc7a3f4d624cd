"""RL rewards: CEC through a real HTTP judge server with faults, the exact ShapesEdit reward, the mix, the drop
semantics, the registry and the background service's overlap with generation."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest

from inference.benchmark.scorers.cec import cec_prompt
from tests.test_bench_support import Answer, ChatServer, last_image_colour, prompt_text, solid
from train.rl.rewards.base import RewardRequest, RewardResult
from train.rl.rewards.mix import MixComponent, MixReward, build_mix_reward
from train.rl.rewards.registry import REWARD_KINDS, build_reward
from train.rl.rewards.service import RewardService

COT = "<think>\nReplace the red square with a blue circle.\n</think>"
GOOD = '{"score": 7, "reasoning": "the plan is carried out"}'


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BENCH_TEST_KEY", "sk-test")


def request(sample_id: str, edited_colour, cot: str | None = COT, reference: dict | None = None) -> RewardRequest:
    return RewardRequest(sample_id, solid((0, 0, 0)), solid(edited_colour), "make it blue", cot, reference)


def cec_settings(server: ChatServer, **overrides) -> dict:
    settings = dict(base_url=server.base_url, model="judge-x", api_key_env="BENCH_TEST_KEY", timeout_s=1.5,
                    max_retries=1, parse_retries=1, concurrency=8)
    settings.update(overrides)
    return settings


class FixedReward:
    """Scores by sample id from a table (None = drop); optionally raises or returns too few results."""

    def __init__(self, name: str, table: dict[str, float | None], components: dict | None = None):
        self.name, self.table, self.components, self.calls = name, table, components or {}, 0

    def __call__(self, requests):
        self.calls += 1
        return [RewardResult(self.table[r.sample_id], dict(self.components),
                             None if self.table[r.sample_id] is not None else f"{self.name} error: judge down")
                for r in requests]


# ---------------------------------------------------------------- CEC over HTTP: faults become drops

def test_cec_reward_turns_judge_faults_into_drops_never_scores():
    calls: dict[tuple, int] = {}
    lock = threading.Lock()

    def rule(body, server):
        colour = last_image_colour(body)
        with lock:
            calls[colour] = calls.get(colour, 0) + 1
            n = calls[colour]
        if colour == (1, 1, 1):
            return Answer(text=GOOD)
        if colour == (2, 2, 2):
            return Answer(status=500, text="overloaded")
        if colour == (3, 3, 3):
            return Answer(text="A lovely edit, truly.")
        if colour == (4, 4, 4):
            return Answer(text=GOOD, delay_s=3.0)  # past the 1.5 s timeout (generous: loaded CI cores), every time
        if colour == (5, 5, 5):  # one 503, then an answer: retried by the SDK, scored
            return Answer(status=503) if n == 1 else Answer(text='{"score": 4.5, "reasoning": "half"}')
        return Answer(status=400, text="unexpected sample")

    server = ChatServer(rule).start()
    try:
        reward = build_reward("cec", cec_settings(server))
        requests = [request("p0/0", (1, 1, 1)), request("p0/1", (2, 2, 2)), request("p0/2", (3, 3, 3)),
                    request("p0/3", (4, 4, 4)), request("p0/4", (5, 5, 5)), request("p0/5", (6, 6, 6), cot=None)]
        results = reward(requests)
    finally:
        server.stop()
    assert [r.score for r in results] == [7.0, None, None, None, 4.5, None]
    assert results[0].components == {"cec": 7.0} and results[0].error is None
    assert results[1].error.startswith("cec error") and "HTTP 500" in results[1].error
    assert results[2].error.startswith("cec parse_fail")
    assert results[3].error.startswith("cec error") and "Timeout" in results[3].error
    assert "no CoT" in results[5].error
    # transport faults: 1 + max_retries attempts; garbage: 1 + parse_retries questions; no CoT: never asked
    assert calls == {(1, 1, 1): 1, (2, 2, 2): 2, (3, 3, 3): 2, (4, 4, 4): 2, (5, 5, 5): 2}
    # the question is evaluation's CEC question: the same prompt, the source then the edited image
    body = server.requests[0]
    assert prompt_text(body) == cec_prompt(COT)


# ---------------------------------------------------------------- the service: overlap, counting, failures

def test_scoring_overlaps_the_callers_work():
    server = ChatServer(lambda body, s: Answer(text=GOOD, delay_s=0.6)).start()
    reward = build_reward("cec", cec_settings(server, timeout_s=5.0, concurrency=4))
    batch = lambda k: [request(f"b{k}/{i}", (10 * k + i, 0, 0)) for i in range(4)]  # noqa: E731
    try:
        with RewardService(reward) as service:
            assert [r.score for r in service.submit(batch(1)).result()] == [7.0] * 4  # warm: loop, connections
            busy_before = service.stats().busy_s
            generation_s = 0.6
            start = time.perf_counter()
            future = service.submit(batch(2))
            time.sleep(generation_s)  # the trainer generates the next batch meanwhile
            results = future.result()
            wall_s = time.perf_counter() - start
            scoring_s = service.stats().busy_s - busy_before  # the worker's time on batch 2
    finally:
        server.stop()
    assert [r.score for r in results] == [7.0] * 4 and server.count() == 8
    assert scoring_s >= 0.6 and wall_s >= max(scoring_s, generation_s) - 0.01
    assert wall_s < 0.75 * (scoring_s + generation_s), (wall_s, scoring_s, generation_s)  # ~max, not the sum


def test_service_counts_drops_by_reason_and_passes_reward_bugs_to_the_caller(caplog):
    reward = FixedReward("judge", {"a": 3.0, "b": None, "c": 9.0})
    service = RewardService(reward)
    requests = [request(k, (1, 1, 1)) for k in ("a", "b", "c")]
    with caplog.at_level("WARNING"):
        results = service.submit(requests).result()
    assert [r.score for r in results] == [3.0, None, 9.0]
    assert "reward judge dropped b: judge error: judge down" in caplog.text
    stats = service.stats()
    assert (stats.batches, stats.samples, stats.scored, stats.dropped) == (1, 3, 2, 1)
    assert dict(stats.drop_reasons) == {"judge error": 1}

    class Broken:
        name = "broken"

        def __call__(self, requests):
            raise KeyError("bug in the reward")

    class Short:
        name = "short"

        def __call__(self, requests):
            return [RewardResult(1.0)]  # one result for three requests

    broken = RewardService(Broken())
    with pytest.raises(KeyError, match="bug in the reward"):
        broken.submit(requests).result()
    assert broken.stats().failed_batches == 1 and broken.stats().batches == 0
    short = RewardService(Short())
    with pytest.raises(RuntimeError, match="1 results for 3 requests"):
        short.submit(requests).result()
    for s in (service, broken, short):
        s.shutdown()


# ---------------------------------------------------------------- the mix

def test_mix_is_a_normalised_weighted_sum_and_drops_on_required_components():
    table_a = {"s1": 8.0, "s2": None, "s3": 2.0, "s4": 6.0}
    table_b = {"s1": 4.0, "s2": 5.0, "s3": None, "s4": None}
    table_c = {"s1": 10.0, "s2": 1.0, "s3": 1.0, "s4": None}
    mix = MixReward([MixComponent("a", FixedReward("a", table_a, {"part": 1.5}), 3.0),
                     MixComponent("b", FixedReward("b", table_b), 1.0, required=False),
                     MixComponent("c", FixedReward("c", table_c), 2.0, required=False)])
    results = mix([request(k, (1, 1, 1)) for k in ("s1", "s2", "s3", "s4")])
    # s1: (3*8 + 1*4 + 2*10) / 6 = 8; logged parts keep each component's own components as name/part
    assert results[0].score == pytest.approx(8.0) and results[0].error is None
    assert results[0].components == {"a": 8.0, "a/part": 1.5, "b": 4.0, "c": 10.0}
    # s2: the required component dropped it -> dropped, with the reason and what the others said
    assert results[1].score is None and results[1].error == "a: a error: judge down"
    assert results[1].components == {"b": 5.0, "c": 1.0}
    # s3: optional b dropped -> (3*2 + 2*1) / 5 over the components that scored
    assert results[2].score == pytest.approx(8 / 5) and results[2].error == "b: b error: judge down"
    # s4: both optionals dropped -> a alone
    assert results[3].score == pytest.approx(6.0)

    with pytest.raises(ValueError, match="weight must be > 0"):
        MixComponent("z", FixedReward("z", {}), 0.0)
    with pytest.raises(ValueError, match="distinct names"):
        MixReward([MixComponent("a", FixedReward("a", {}), 1.0), MixComponent("a", FixedReward("a", {}), 1.0)])
    with pytest.raises(ValueError, match="needs 'kind'"):
        build_mix_reward([{"weight": 1.0}])


def test_mix_built_from_config_runs_cec_over_http_beside_the_exact_reward(monkeypatch):
    fake = types.ModuleType("data.shapes_edit.judge")
    fake.score_edit = lambda reference, image, cot: {"overall": 6.0, "cot_consistency": 9.0, "quality": 3.0,
                                                     "explanation": "x", "cot_matches_target": True}
    monkeypatch.setitem(sys.modules, "data.shapes_edit.judge", fake)
    server = ChatServer(lambda body, s: Answer(text=GOOD) if last_image_colour(body) == (1, 1, 1)
                        else Answer(status=500)).start()
    try:
        mix = build_reward("mix", {"components": [
            {"kind": "shapes_exact", "weight": 1.0},
            {"kind": "cec", "weight": 2.0, "settings": cec_settings(server, max_retries=0), "name": "judge"}]})
        ok, failed = mix([request("a", (1, 1, 1), reference={"target_scene": {}}),
                          request("b", (2, 2, 2), reference={"target_scene": {}})])
    finally:
        server.stop()
    assert ok.score == pytest.approx((9.0 + 2 * 7.0) / 3)
    assert ok.components == {"shapes_exact": 9.0, "shapes_exact/overall": 6.0, "shapes_exact/cot_consistency": 9.0,
                             "shapes_exact/quality": 3.0, "judge": 7.0, "judge/cec": 7.0}
    assert failed.score is None and failed.error.startswith("judge: cec error") and "HTTP 500" in failed.error


# ---------------------------------------------------------------- the exact reward and the registry

def test_shapes_exact_reward_on_a_real_shapes_edit_sample():
    from data.metacot import MetaCoT
    from data.shapes_edit.export import benchmark_samples
    from data.shapes_edit.render import render_paletted

    sample = benchmark_samples(1, seed=3)[0]
    reference = {"source_scene": sample.source.to_dict(), "target_scene": sample.target.to_dict(),
                 "cot": sample.cot.to_dict()}
    cot = MetaCoT.from_dict(reference["cot"]).render()
    source, target = render_paletted(sample.source, 128), render_paletted(sample.target, 128)
    requests = [RewardRequest("t", source, target, sample.instruction, cot, reference),
                RewardRequest("s", source, source, sample.instruction, cot, reference),
                RewardRequest("n", source, target, sample.instruction, cot, None)]
    consistency = build_reward("shapes_exact", {})(requests)
    overall = build_reward("shapes_exact", {"dimension": "overall"})(requests)
    assert consistency[0].score == 10.0 and consistency[0].components["cot_consistency"] == 10.0
    assert consistency[1].score < consistency[0].score  # the unedited source does not carry out the CoT
    assert overall[0].score == overall[0].components["overall"] and overall[0].score > overall[1].score
    assert consistency[2].score is None and "no ShapesEdit reference" in consistency[2].error


def test_registry_errors_and_lazy_programmatic_import(monkeypatch):
    assert REWARD_KINDS == ("programmatic", "cec", "shapes_exact", "mix")
    with pytest.raises(ValueError, match="reward kind 'clip' unknown; choose from programmatic, cec"):
        build_reward("clip", {})
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['dim'\]; accepted: dimension"):
        build_reward("shapes_exact", {"dim": "overall"})
    with pytest.raises(ValueError, match="dimension 'beauty' unknown"):
        build_reward("shapes_exact", {"dimension": "beauty"})
    with pytest.raises(ValueError, match=r"reward 'cec': unknown setting\(s\) \['url'\]"):
        build_reward("cec", {"url": "http://x"})

    built = []

    class ProgrammaticReward:
        name = "programmatic"

        def __init__(self, checks: list[str]):
            built.append(checks)

    fake = types.ModuleType("train.rl.rewards.programmatic")
    fake.ProgrammaticReward = ProgrammaticReward
    monkeypatch.setitem(sys.modules, "train.rl.rewards.programmatic", fake)
    assert isinstance(build_reward("programmatic", {"checks": ["count"]}), ProgrammaticReward)
    assert built == [["count"]]
