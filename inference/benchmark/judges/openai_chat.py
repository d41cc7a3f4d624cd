"""Judge backend for any OpenAI-compatible chat-completions server (OpenAI, Azure's v1 endpoint, vLLM, SGLang).

Built on the ``openai`` SDK's async client: one user message whose content lists the parts in order, images as
base64 data URLs. The SDK owns the transport: its connection pool, per-request timeout, and retries with
exponential backoff (0.5 s doubling to 8 s, honouring ``Retry-After``) on timeouts, connection errors, HTTP 408,
409, 429 and 5xx; other HTTP errors (400 content filter, 401 bad key) fail at once with the server's message.
A 200 whose body is not a chat completion is asked again here, up to ``max_retries`` times.

Each judge runs its client on one private event-loop thread, started on first use, so synchronous callers (the
scoring threads of evaluation, the RL reward's workers) share one pool of keep-alive connections; at most
``max_concurrency`` requests are in flight per judge, however many threads call it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import openai
from PIL import Image

from inference.benchmark.judges.base import ChatJudge, Completion, JudgeTransportError, Part
from inference.benchmark.judges.cache import ReplyCache

log = logging.getLogger(__name__)
RETRIED_HTTP = frozenset({408, 409, 429})  # and every 5xx: what the SDK retries
MALFORMED = (ValueError, KeyError, IndexError, TypeError, AttributeError)  # a 200 that is no chat completion


@dataclass(frozen=True)
class OpenAIChatConfig:
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4.1-2025-04-14"
    api_key_env: str = "OPENAI_API_KEY"
    auth_header: str = "bearer"  # "bearer" (OpenAI, vLLM, SGLang) or "api-key" (Azure)
    timeout_s: float = 120.0  # per attempt
    max_retries: int = 5  # the SDK's transport retries after the first attempt
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


def client_auth(api_key_env: str, auth_header: str, warn: bool = True) -> tuple[str, dict[str, Any]]:
    """(api_key for the SDK, headers for every request). Without a key, or with Azure's ``api-key`` header, the
    SDK's ``Authorization: Bearer`` header is omitted explicitly (it requires a key string either way)."""
    key = os.environ.get(api_key_env)
    if not key:
        if warn:
            log.warning("%s is not set; sending requests without an API key (fine for local vLLM/SGLang)",
                        api_key_env)
        return "unused", {"Authorization": openai.Omit()}
    if auth_header == "api-key":
        return key, {"Authorization": openai.Omit(), "api-key": key}
    return key, {}


def message_text(completion: Any) -> str:
    content = completion.choices[0].message.content
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise TypeError(f"message content is {type(content).__name__}")
    return content


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


def _stop_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.call_soon_threadsafe(loop.stop)
    except RuntimeError:  # already closed
        pass


class OpenAIChatJudge(ChatJudge):
    def __init__(self, config: OpenAIChatConfig, cache: ReplyCache | None = None, parse_retries: int = 2):
        super().__init__(cache, parse_retries)
        self.config = config
        self._api_key, self._auth_headers = client_auth(config.api_key_env, config.auth_header)
        self.requests_sent = 0  # HTTP requests actually made, retries included (tests and cost accounting)
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def model_id(self) -> str:
        return self.config.model

    def fingerprint(self) -> dict:
        c = self.config
        return {"backend": "openai", "model": c.model, "temperature": c.temperature, "max_tokens": c.max_tokens,
                "image_format": c.image_format, "max_image_side": c.max_image_side}

    def build_messages(self, system: str | None, parts: Sequence[Part]) -> list[dict]:
        content = []
        for part in parts:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            else:
                url = image_data_url(part, self.config.image_format, self.config.max_image_side)
                content.append({"type": "image_url", "image_url": {"url": url}})
        return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]

    def _complete(self, system: str | None, parts: Sequence[Part]) -> Completion:
        return asyncio.run_coroutine_threadsafe(self._request(system, parts), self._event_loop()).result()

    async def _request(self, system: str | None, parts: Sequence[Part]) -> Completion:
        """One answered request on the judge's loop; raises JudgeTransportError when it cannot get one."""
        c = self.config
        messages = self.build_messages(system, parts)
        retries, last_error = 0, ""
        async with self._slots:
            for attempt in range(c.max_retries + 1):
                try:
                    raw = await self._client.chat.completions.with_raw_response.create(
                        model=c.model, messages=messages, temperature=c.temperature, max_tokens=c.max_tokens,
                        extra_headers=self._auth_headers)
                except openai.APIStatusError as e:
                    tried = (f"after {c.max_retries + 1} attempts" if e.status_code in RETRIED_HTTP
                             or e.status_code >= 500 else "not retried")
                    raise JudgeTransportError(f"{c.base_url} answered HTTP {e.status_code} ({tried}): "
                                              f"{e.message[:300]}") from e
                except openai.APIConnectionError as e:  # timeouts included, after the SDK's retries
                    raise JudgeTransportError(f"{c.base_url}: no answer after {c.max_retries + 1} attempts "
                                              f"({type(e).__name__}: {e})") from e
                retries += raw.retries_taken + (attempt > 0)
                try:
                    return Completion(message_text(raw.parse()), transport_retries=retries)
                except MALFORMED as e:
                    last_error = f"malformed chat-completions response: {type(e).__name__}: {e}"
        raise JudgeTransportError(f"{c.base_url}: {last_error} ({c.max_retries + 1} answers)")

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The judge's loop thread with its SDK client, created on first use (none for judges never asked)."""
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=_run_loop, args=(loop,), name="openai-judge", daemon=True).start()
                asyncio.run_coroutine_threadsafe(self._open(), loop).result()
                weakref.finalize(self, _stop_loop, loop)  # the thread ends with its judge
                self._loop = loop
        return self._loop

    async def _open(self) -> None:
        c = self.config
        self._slots = asyncio.Semaphore(c.max_concurrency)
        self._client = openai.AsyncOpenAI(
            api_key=self._api_key, base_url=c.base_url, timeout=c.timeout_s, max_retries=c.max_retries,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [self._count_request]}))

    async def _count_request(self, request: Any) -> None:
        self.requests_sent += 1  # runs on the judge's single loop thread: no lock needed

    def close(self) -> None:
        """Close the connection pool and stop the loop thread (a later request starts them again)."""
        with self._start_lock:
            loop, self._loop = self._loop, None
            if loop is not None:
                asyncio.run_coroutine_threadsafe(self._client.close(), loop).result()
                _stop_loop(loop)
