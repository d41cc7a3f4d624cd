"""The reward server: external URLs are checked before use; mode vllm starts `vllm serve` (a fake executable on
PATH here) on the chosen GPUs, waits until it answers, reports crashes and timeouts, and stops it."""

from __future__ import annotations

import os
import socket
import stat
import sys
import textwrap

import pytest

from tests.test_bench_support import Answer, ChatServer
from train.rl.rewards import server as reward_server
from train.rl.rewards.server import (RewardServerConfig, RewardServerError, ensure_reward_server, probe_server,
                                     start_vllm_server, vllm_command)

FAKE_VLLM = textwrap.dedent("""\
    #!{python}
    # stands in for `vllm serve MODEL --host H --port P ...`: logs its command line and GPUs, then serves /v1/models
    import json, os, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    args = sys.argv[1:]
    print("ARGS", " ".join(args), flush=True)
    print("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
    behaviour = os.environ.get("FAKE_VLLM", "serve")
    if behaviour == "crash":
        print("RuntimeError: CUDA out of memory", flush=True)
        sys.exit(3)
    if behaviour == "hang":
        time.sleep(60)
    time.sleep(0.3)  # loading

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            body = json.dumps({{"object": "list", "data": [{{"id": args[1], "object": "model"}}]}}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    HTTPServer((args[args.index("--host") + 1], int(args[args.index("--port") + 1])), Handler).serve_forever()
    """)


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "vllm"
    exe.write_text(FAKE_VLLM.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_external_server_is_checked_before_use():
    server = ChatServer(lambda body, s: Answer(text="{}")).start()
    try:
        assert ensure_reward_server(RewardServerConfig(mode="external", url=server.base_url)) == server.base_url
        server.models_status = 401
        with pytest.raises(RewardServerError, match="answered HTTP 401"):
            ensure_reward_server(RewardServerConfig(mode="external", url=server.base_url))
    finally:
        server.stop()
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(RewardServerError) as error:
        ensure_reward_server(RewardServerConfig(mode="external", url=url))
    message = str(error.value)
    assert f"nothing answers at {url}" in message and "reward_server.url" in message and "\n" not in message
    assert ensure_reward_server(RewardServerConfig(mode="none")) is None
    with pytest.raises(ValueError, match="needs url"):
        RewardServerConfig(mode="external")
    with pytest.raises(ValueError, match="mode 'sglang' unknown"):
        RewardServerConfig(mode="sglang")


def test_vllm_is_started_on_the_chosen_gpus_answers_and_stops(fake_vllm, tmp_path, monkeypatch):
    registered = []
    monkeypatch.setattr(reward_server.atexit, "register", registered.append)
    port = free_port()
    cfg = RewardServerConfig(mode="vllm", model="Qwen/Qwen2.5-VL-7B-Instruct", gpus="3,5", port=port,
                             startup_timeout_s=20, extra_args=("--max-model-len", "8192"))
    url = ensure_reward_server(cfg, tmp_path / "logs" / "reward_server.log")
    assert url == f"http://127.0.0.1:{port}/v1" and probe_server(url) is None
    log = (tmp_path / "logs" / "reward_server.log").read_text()
    assert (f"ARGS serve Qwen/Qwen2.5-VL-7B-Instruct --host 127.0.0.1 --port {port} --max-model-len 8192 "
            "--tensor-parallel-size 2") in log
    assert "CUDA_VISIBLE_DEVICES 3,5" in log
    (stop,) = registered  # stopped at exit
    stop()
    assert probe_server(url, timeout_s=1) is not None
    # a tensor-parallel size the user gave is kept
    given = RewardServerConfig(mode="vllm", model="m", gpus="0,1,2,3", extra_args=("--tensor-parallel-size=2",))
    assert vllm_command(given, "vllm")[-1] == "--tensor-parallel-size=2"


def test_vllm_crash_timeout_busy_port_and_missing_executable(fake_vllm, tmp_path, monkeypatch):
    cfg = RewardServerConfig(mode="vllm", model="m", port=free_port(), startup_timeout_s=1.5)
    monkeypatch.setenv("FAKE_VLLM", "crash")
    with pytest.raises(RewardServerError, match=r"exited with code 3 before answering; see .*CUDA out of memory"):
        start_vllm_server(cfg, tmp_path / "crash.log", poll_s=0.1)
    monkeypatch.setenv("FAKE_VLLM", "hang")
    with pytest.raises(RewardServerError, match="did not answer within 2 s"):
        start_vllm_server(cfg, tmp_path / "hang.log", poll_s=0.1)
    busy = ChatServer(lambda body, s: Answer(text="{}")).start()
    try:
        taken = RewardServerConfig(mode="vllm", model="m", port=busy.httpd.server_address[1])
        with pytest.raises(RewardServerError, match="already in use"):
            start_vllm_server(taken)
    finally:
        busy.stop()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RewardServerError, match="`vllm` command is not on PATH; pip install vllm"):
        ensure_reward_server(cfg)
