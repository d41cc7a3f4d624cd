"""Judge backend for any OpenAI-compatible chat-completions server (OpenAI, Azure's v1 endpoint, vLLM, SGLang).

Plain stdlib HTTP (no SDK): ``POST {base_url}/chat/completions`` with one user message whose content lists the
parts in order, images as base64 data URLs. At most ``max_concurrency`` requests are in flight per client, however
many threads call it. Timeouts, connection errors, HTTP 429 and 5xx are retried with exponential backoff (honouring
``Retry-After``); other HTTP errors (400 content filter, 401 bad key) fail at once with the server's message.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Sequence

from PIL import Image

from inference.benchmark.judges.base import ChatJudge, Completion, JudgeTransportError, Part
from inference.benchmark.judges.cache import ReplyCache

log = logging.getLogger(__name__)
RETRYABLE_HTTP = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class OpenAIChatConfig:
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4.1-2025-04-14"
    api_key_env: str = "OPENAI_API_KEY"
    auth_header: str = "bearer"  # "bearer" (OpenAI, vLLM, SGLang) or "api-key" (Azure)
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    max_concurrency: int = 8
    temperature: float = 0.0
    max_tokens: int = 1400
    image_format: str = "png"  # "png" or "jpeg"
    max_image_side: int | None = None  # downscale larger images before sending (RISE uses 768)

    def __post_init__(self) -> None:
        if self.auth_header not in ("bearer", "api-key"):
            raise ValueError(f"auth_header {self.auth_header!r} must be 'bearer' or 'api-key'")
        if self.image_format not in ("png", "jpeg"):
            raise ValueError(f"image_format {self.image_format!r} must be 'png' or 'jpeg'")
        if self.max_concurrency < 1 or self.max_retries < 0 or self.timeout_s <= 0:
            raise ValueError("max_concurrency >= 1, max_retries >= 0 and timeout_s > 0 are required")


def image_data_url(image: Image.Image, image_format: str = "png", max_side: int | None = None) -> str:
    image = image.convert("RGB")
    if max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, format=image_format.upper())
    return f"data:image/{image_format};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


class OpenAIChatJudge(ChatJudge):
    def __init__(self, config: OpenAIChatConfig, cache: ReplyCache | None = None, parse_retries: int = 2):
        super().__init__(cache, parse_retries)
        self.config = config
        self._api_key = os.environ.get(config.api_key_env)
        if not self._api_key:
            log.warning("%s is not set; sending requests without an API key (fine for local vLLM/SGLang)",
                        config.api_key_env)
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self.requests_sent = 0  # HTTP requests actually made (tests and cost accounting)
        self._count_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.config.model

    def fingerprint(self) -> dict:
        c = self.config
        return {"backend": "openai", "model": c.model, "temperature": c.temperature, "max_tokens": c.max_tokens,
                "image_format": c.image_format, "max_image_side": c.max_image_side}

    def build_body(self, system: str | None, parts: Sequence[Part]) -> dict:
        content = []
        for part in parts:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            else:
                url = image_data_url(part, self.config.image_format, self.config.max_image_side)
                content.append({"type": "image_url", "image_url": {"url": url}})
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        return {"model": self.config.model, "messages": messages, "temperature": self.config.temperature,
                "max_tokens": self.config.max_tokens}

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            if self.config.auth_header == "bearer":
                headers["Authorization"] = f"Bearer {self._api_key}"
            else:
                headers["api-key"] = self._api_key
        return headers

    def _complete(self, system: str | None, parts: Sequence[Part]) -> Completion:
        data = json.dumps(self.build_body(system, parts)).encode("utf-8")
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        last_error, retry_after = "", None
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                time.sleep(self._backoff(attempt, retry_after))
                retry_after = None
            with self._slots:
                with self._count_lock:
                    self.requests_sent += 1
                try:
                    request = urllib.request.Request(url, data=data, headers=self._headers(), method="POST")
                    with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                        payload = response.read()
                except urllib.error.HTTPError as e:
                    body = e.read()[:300].decode("utf-8", "replace")
                    last_error = f"HTTP {e.code}: {body}"
                    if e.code not in RETRYABLE_HTTP:
                        raise JudgeTransportError(f"{url} answered {last_error} (not retried)") from e
                    retry_after = e.headers.get("Retry-After") if e.headers else None
                    continue
                except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as e:
                    last_error = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
                    continue
            try:
                return Completion(self._content(payload), transport_retries=attempt)
            except (ValueError, KeyError, IndexError, TypeError) as e:
                last_error = f"malformed chat-completions response: {e}"
        raise JudgeTransportError(f"{url}: no answer after {self.config.max_retries + 1} attempts ({last_error})")

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            return min(float(retry_after), self.config.max_backoff_s)
        return min(self.config.backoff_s * 2 ** (attempt - 1), self.config.max_backoff_s)

    @staticmethod
    def _content(payload: bytes) -> str:
        message = json.loads(payload)["choices"][0]["message"]
        content = message["content"]
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise TypeError(f"message content is {type(content).__name__}")
        return content
