"""The judge server of the CEC reward: none, an external URL, or a vLLM server started here on chosen GPUs.

``ensure_reward_server(cfg)`` returns the OpenAI-compatible base URL the reward should call (None for mode
``none``) once the server answers ``GET {url}/models``; it fails with one line naming the problem otherwise, so a
training run never starts against a judge that is not there. Mode ``vllm`` runs ``vllm serve MODEL`` as a child
process (its own process group, ``CUDA_VISIBLE_DEVICES`` = ``gpus``, output in a log file) and stops it at exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import openai

from inference.benchmark.judges.openai_chat import client_auth

log = logging.getLogger(__name__)
REWARD_SERVER_MODES: tuple[str, ...] = ("none", "external", "vllm")


class RewardServerError(RuntimeError):
    """The reward server is unusable; the message says why and what to change."""


@dataclass(frozen=True)
class RewardServerConfig:
    mode: Literal["none", "external", "vllm"] = "none"  # none (no server: exact or in-process rewards), external (url), vllm (started here)
    url: str | None = None  # external: base URL, e.g. http://judge-host:8000/v1
    model: str = "Qwen/Qwen2.5-VL-72B-Instruct"  # vllm: model to serve (hub id or local folder)
    gpus: str = ""  # vllm: CUDA_VISIBLE_DEVICES of the server, e.g. "6,7" (tensor parallel over them)
    port: int = 8000  # vllm
    host: str = "127.0.0.1"  # vllm: address to bind and call
    startup_timeout_s: float = 900.0  # vllm: loading a 72B model takes minutes
    extra_args: tuple[str, ...] = ()  # vllm: more `vllm serve` flags, e.g. ["--max-model-len", "16384"]
    api_key_env: str = "OPENAI_API_KEY"  # external servers that need a key
    auth_header: str = "bearer"  # or "api-key" (Azure)

    def __post_init__(self) -> None:
        if self.mode not in REWARD_SERVER_MODES:
            raise ValueError(f"reward server mode {self.mode!r} unknown; choose from {', '.join(REWARD_SERVER_MODES)}")
        if self.mode == "external" and not self.url:
            raise ValueError("reward server mode external needs url (e.g. http://HOST:8000/v1)")


def probe_server(url: str, api_key_env: str = "OPENAI_API_KEY", auth_header: str = "bearer",
                 timeout_s: float = 10.0) -> str | None:
    """None when ``GET {url}/models`` answers, else why not (one line)."""
    api_key, headers = client_auth(api_key_env, auth_header, warn=False)
    client = openai.OpenAI(api_key=api_key, base_url=url, timeout=timeout_s, max_retries=0)
    try:
        client.models.list(extra_headers=headers)
    except openai.APIStatusError as e:
        return f"{url}/models answered HTTP {e.status_code}"
    except openai.APIConnectionError as e:
        return f"nothing answers at {url} ({type(e).__name__})"
    finally:
        client.close()
    return None


@dataclass
class VLLMServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``grace_s``."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def vllm_command(cfg: RewardServerConfig, executable: str) -> list[str]:
    command = [executable, "serve", cfg.model, "--host", cfg.host, "--port", str(cfg.port), *cfg.extra_args]
    gpu_count = len([g for g in cfg.gpus.split(",") if g.strip()])
    tp_given = any(a.split("=")[0] in ("--tensor-parallel-size", "-tp") for a in cfg.extra_args)
    if gpu_count > 1 and not tp_given:
        command += ["--tensor-parallel-size", str(gpu_count)]
    return command


def start_vllm_server(cfg: RewardServerConfig, log_path: str | Path | None = None,
                      poll_s: float = 1.0) -> VLLMServer:
    """Start ``vllm serve`` and wait until it answers (or exits, or ``startup_timeout_s`` passes)."""
    executable = shutil.which("vllm")
    if executable is None:
        raise RewardServerError("reward server mode vllm: the `vllm` command is not on PATH; pip install vllm, "
                                "or start a server yourself and use mode external with its url")
    with socket.socket() as s:
        s.settimeout(1.0)
        if s.connect_ex((cfg.host, cfg.port)) == 0:
            raise RewardServerError(f"reward server port {cfg.host}:{cfg.port} is already in use; choose another "
                                    "port, or use mode external if that is your judge server")
    if log_path is None:  # the trainer passes one under its output_dir; this is for direct library use
        log_path = Path(tempfile.gettempdir()) / f"reward_server_{os.getpid()}_{cfg.port}.log"
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if cfg.gpus:
        env["CUDA_VISIBLE_DEVICES"] = cfg.gpus
    command = vllm_command(cfg, executable)
    log.info("starting the reward server: %s (GPUs %s, log %s)", " ".join(command), cfg.gpus or "inherited",
             log_path)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    server = VLLMServer(f"http://{cfg.host}:{cfg.port}/v1", process, log_path)
    deadline = time.monotonic() + cfg.startup_timeout_s
    while True:
        if process.poll() is not None:
            raise RewardServerError(f"the vllm reward server exited with code {process.returncode} before "
                                    f"answering; see {log_path}: {server.log_tail()}")
        problem = probe_server(server.url, timeout_s=min(10.0, cfg.startup_timeout_s))
        if problem is None:
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise RewardServerError(f"the vllm reward server did not answer within {cfg.startup_timeout_s:.0f} s "
                                    f"({problem}); raise startup_timeout_s or see {log_path}")
        time.sleep(poll_s)


def ensure_reward_server(cfg: RewardServerConfig, log_path: str | Path | None = None) -> str | None:
    """The base URL of a judge server that answers (None for mode none); a vllm server is stopped at exit."""
    if cfg.mode == "none":
        return None
    if cfg.mode == "external":
        problem = probe_server(cfg.url, cfg.api_key_env, cfg.auth_header)
        if problem is not None:
            raise RewardServerError(f"reward server check failed: {problem}; start the judge server or fix "
                                    "reward_server.url")
        return cfg.url
    server = start_vllm_server(cfg, log_path)
    atexit.register(server.stop)
    log.info("reward server ready at %s", server.url)
    return server.url
