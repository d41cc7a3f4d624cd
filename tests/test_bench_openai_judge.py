"""OpenAI-compatible judge client against a real HTTP server on 127.0.0.1 answering by rule."""

from __future__ import annotations

import base64
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from inference.benchmark.judges import OpenAIChatConfig, OpenAIChatJudge, ReplyCache
from inference.benchmark.scorers.parsing import parse_score_list
from tests.test_bench_support import Answer, ChatServer, solid

GOOD = '{"score": [8, 6], "reasoning": "fine"}'
PARSE = lambda text: parse_score_list(text, 2, 0, 10)  # noqa: E731


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BENCH_TEST_KEY", "sk-test-123")


def serve(rule):
    return ChatServer(rule).start()


def judge_for(server, cache=None, **overrides) -> OpenAIChatJudge:
    config = dict(base_url=server.base_url, model="judge-x", api_key_env="BENCH_TEST_KEY", timeout_s=2.0,
                  max_retries=3)
    config.update(overrides)
    return OpenAIChatJudge(OpenAIChatConfig(**config), cache, parse_retries=overrides.pop("parse_retries", 2))


def script(*answers):
    """A rule replaying answers in order (the last one repeats)."""
    state = {"n": 0}
    lock = threading.Lock()

    def rule(body, server):
        with lock:
            i = min(state["n"], len(answers) - 1)
            state["n"] += 1
        return answers[i]

    return rule


def test_good_reply_is_parsed_and_request_follows_the_protocol():
    server = serve(script(Answer(text=GOOD)))
    try:
        reply = judge_for(server).ask(["rate this", solid((10, 20, 30)), solid((1, 2, 3))], PARSE, system="sys")
    finally:
        server.stop()
    assert reply.status == "ok" and reply.value == ([8.0, 6.0], "fine")
    assert reply.attempts == 1 and reply.transport_retries == 0 and server.count() == 1
    body, headers = server.requests[0], {k.lower(): v for k, v in server.headers[0].items()}
    assert body["model"] == "judge-x" and body["temperature"] == 0.0
    assert body["messages"][0] == {"role": "system", "content": "sys"}
    content = body["messages"][1]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "image_url"]
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (40, 32) and decoded.getpixel((0, 0)) == (10, 20, 30)
    assert headers["authorization"] == "Bearer sk-test-123"


@pytest.mark.parametrize("auth_header, key_set, expected", [
    ("api-key", True, {"api-key": "sk-test-123"}),  # Azure style: the key in api-key, no bearer header
    ("bearer", False, {}),  # a local vLLM without a key: no credentials sent at all
])
def test_auth_header_variants(monkeypatch, auth_header, key_set, expected):
    if not key_set:
        monkeypatch.delenv("BENCH_TEST_KEY")
    server = serve(script(Answer(text=GOOD)))
    try:
        reply = judge_for(server, auth_header=auth_header).ask(["q"], PARSE)
    finally:
        server.stop()
    headers = {k.lower(): v for k, v in server.headers[0].items()}
    assert reply.ok and "authorization" not in headers
    assert {k: headers[k] for k in ("api-key",) if k in headers} == expected


def test_http_500_is_retried_with_backoff_then_succeeds():
    server = serve(script(Answer(status=500), Answer(status=503), Answer(text=GOOD)))
    try:
        reply = judge_for(server).ask(["q"], PARSE)
    finally:
        server.stop()
    assert reply.status == "ok" and reply.transport_retries == 2 and server.count() == 3


def test_persistent_500_is_recorded_as_error_after_all_retries():
    server = serve(script(Answer(status=500, text="boom")))
    try:
        judge = judge_for(server, max_retries=2)
        reply = judge.ask(["q"], PARSE)
    finally:
        server.stop()
    assert reply.status == "error" and reply.value is None
    assert "HTTP 500" in reply.error and server.count() == 3 and judge.requests_sent == 3


def test_client_error_is_not_retried():
    server = serve(script(Answer(status=400, text="content filter")))
    try:
        reply = judge_for(server).ask(["q"], PARSE)
    finally:
        server.stop()
    assert reply.status == "error" and "content filter" in reply.error and server.count() == 1


def test_slow_reply_times_out_and_is_retried():
    server = serve(script(Answer(text=GOOD, delay_s=1.0), Answer(text=GOOD)))
    try:
        reply = judge_for(server, timeout_s=0.3).ask(["q"], PARSE)
    finally:
        server.stop()
    assert reply.status == "ok" and reply.transport_retries == 1 and server.count() == 2


def test_malformed_response_body_is_retried():
    server = serve(script(Answer(raw_body=b"<html>gateway</html>"), Answer(text=GOOD)))
    try:
        reply = judge_for(server).ask(["q"], PARSE)
    finally:
        server.stop()
    assert reply.status == "ok" and reply.transport_retries == 1


def test_garbage_is_re_asked_then_recorded_as_parse_failure(tmp_path):
    server = serve(script(Answer(text="I would rather not say.")))
    try:
        reply = judge_for(server, ReplyCache(tmp_path)).ask(["q"], PARSE)
    finally:
        server.stop()
    assert reply.status == "parse_fail" and reply.value is None
    assert reply.attempts == 3 and reply.raw == ["I would rather not say."] * 3 and server.count() == 3
    assert "unparsable" in reply.error


def test_garbage_then_good_counts_attempts():
    server = serve(script(Answer(text="hmm"), Answer(text=GOOD)))
    try:
        reply = judge_for(server).ask(["q"], PARSE)
    finally:
        server.stop()
    assert reply.status == "ok" and reply.attempts == 2 and reply.raw == ["hmm", GOOD]


def test_cache_replays_replies_without_contacting_the_server(tmp_path):
    server = serve(script(Answer(text="nope"), Answer(text=GOOD)))
    image = solid((5, 6, 7))
    try:
        first = judge_for(server, ReplyCache(tmp_path)).ask(["q", image], PARSE)
        before = server.count()
        second = judge_for(server, ReplyCache(tmp_path)).ask(["q", image.copy()], PARSE)
        other = judge_for(server, ReplyCache(tmp_path)).ask(["q", solid((5, 6, 8))], PARSE)
    finally:
        server.stop()
    assert before == 2 and first.cache_hits == 0
    assert second.value == first.value and second.attempts == 2 and second.cache_hits == 2
    assert server.count() == before + 1 and other.cache_hits == 0  # a different image is a different request


def test_concurrency_is_bounded_across_threads():
    server = serve(script(Answer(text=GOOD, delay_s=0.15)))
    judge = judge_for(server, max_concurrency=2)
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            replies = list(pool.map(lambda i: judge.ask([f"q{i}"], PARSE), range(6)))
    finally:
        server.stop()
    assert all(r.ok for r in replies) and server.count() == 6
    assert server.max_in_flight == 2 and judge.requests_sent == 6


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="auth_header"):
        OpenAIChatConfig(base_url="http://127.0.0.1:1", model="m", auth_header="token")


def test_close_stops_the_loop_thread_and_a_later_request_reopens_it():
    server = serve(script(Answer(text=GOOD)))
    judge = judge_for(server)
    try:
        before = set(threading.enumerate())
        assert judge.ask(["q1"], PARSE).ok
        loop_threads = [t for t in set(threading.enumerate()) - before if t.name == "openai-judge"]
        assert len(loop_threads) == 1
        judge.close()
        for thread in loop_threads:
            thread.join(timeout=5)
        assert not any(t.is_alive() for t in loop_threads)
        assert judge.ask(["q2"], PARSE).ok and judge.requests_sent == 2
    finally:
        judge.close()
        server.stop()
