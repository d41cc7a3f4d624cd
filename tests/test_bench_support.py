"""Shared pieces for the tests/test_bench_*.py files (no tests here): a tiny benchmark, fake editors and a real
OpenAI-compatible chat-completions HTTP server on 127.0.0.1 that answers by rule."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from PIL import Image

from inference.benchmark.schema import BenchSample, write_benchmark


# ---------------------------------------------------------------- tiny benchmark and editors

def solid(colour: tuple[int, int, int], size: tuple[int, int] = (40, 32)) -> Image.Image:
    return Image.new("RGB", size, colour)


def shifted(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """What the fake editor does to a pixel: a colour shift that keeps every test colour distinct."""
    return tuple((c + 100) % 256 for c in colour)


def make_bench(bench_dir: Path, spec: list[tuple[str, str, tuple[int, int, int]]], language: str = "en",
               reference: dict | None = None) -> list[BenchSample]:
    """spec: (id, category, source colour); instruction names the id so failures are easy to read."""
    entries = [(BenchSample(i, f"images/{i}.png", f"edit sample {i}", cat, language, dict(reference or {})),
                solid(colour)) for i, cat, colour in spec]
    write_benchmark(bench_dir, entries)
    return [s for s, _ in entries]


@dataclass
class FakeResult:
    image: Image.Image
    think_text: str | None
    timings: dict


class FakeEditor:
    """Returns a colour-shifted copy of the source; records every call; optionally stops after `stop_after` edits."""

    def __init__(self, stop_after: int | None = None):
        self.calls: list[tuple[str, bool, int, dict]] = []
        self.stop_after = stop_after

    def edit(self, image, instruction, *, think=False, seed=0, **hyper):
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append((instruction, think, seed, hyper))
        out = Image.new("RGB", image.size, shifted(image.getpixel((0, 0))))
        cot = f"<think>\nplan for {instruction}\n</think>" if think else None
        return FakeResult(out, cot, {"total": 0.01})


def make_fake_editor(model_path: str, device: str = "cpu", dtype: str = "float32") -> FakeEditor:
    """Editor factory for ``--editor-factory tests.test_bench_support:make_fake_editor``."""
    return FakeEditor()


# ---------------------------------------------------------------- OpenAI-compatible server answering by rule

@dataclass
class Answer:
    status: int = 200
    text: str | None = None  # assistant message content
    delay_s: float = 0.0
    raw_body: bytes | None = None  # send these bytes instead of a chat-completions JSON


Rule = Callable[[dict, "ChatServer"], Answer]


def last_image_colour(body: dict) -> tuple[int, int, int] | None:
    """Top-left pixel of the last image in the user message (identifies the sample in rule-based tests)."""
    urls = [p["image_url"]["url"] for m in body["messages"] if isinstance(m["content"], list)
            for p in m["content"] if p.get("type") == "image_url"]
    if not urls:
        return None
    data = base64.b64decode(urls[-1].split("base64,", 1)[1])
    return Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0))


def prompt_text(body: dict) -> str:
    return "".join(p.get("text", "") for m in body["messages"] if isinstance(m["content"], list)
                   for p in m["content"] if p.get("type") == "text")


@dataclass
class ChatServer:
    rule: Rule
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    httpd: ThreadingHTTPServer | None = None
    models_status: int = 200  # answer of GET /v1/models (the health check of reward servers)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def count(self, predicate: Callable[[dict], bool] = lambda body: True) -> int:
        with self.lock:
            return sum(1 for body in self.requests if predicate(body))

    def start(self) -> "ChatServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                status = server.models_status if self.path == "/v1/models" else 404
                payload = json.dumps({"object": "list", "data": [{"id": "judge-x", "object": "model"}]}
                                     if status == 200 else {"error": {"message": f"HTTP {status}"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if self.path != "/v1/chat/completions":
                        answer = Answer(status=404, text="no such route")
                    else:
                        answer = server.rule(body, server)
                    time.sleep(answer.delay_s)
                    if answer.raw_body is not None:
                        payload = answer.raw_body
                    elif answer.status == 200:
                        payload = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                                              "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                                  "role": "assistant", "content": answer.text}}]}).encode()
                    else:
                        payload = json.dumps({"error": {"message": answer.text or "error"}}).encode()
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
