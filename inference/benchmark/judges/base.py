"""The judge interface: ask a vision-language model one question and get a parsed answer, or a recorded failure.

A question is a system text (optional) plus an ordered list of parts, each a text or a PIL image. ``ChatJudge.ask``
sends it, parses the reply with the caller's parser, re-asks up to ``parse_retries`` times when the reply does not
parse, and returns a ``JudgeReply`` whose ``status`` is ``ok``, ``parse_fail`` (every reply was unparsable) or
``error`` (the judge could not be reached or refused). Failures are never turned into scores. Backends implement
only ``_complete`` (one request, with their own transport retries) and ``fingerprint`` (what the cache key needs).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

from PIL import Image

from inference.benchmark.judges.cache import ReplyCache, request_key

T = TypeVar("T")
Part = str | Image.Image
JUDGE_STATUSES: tuple[str, ...] = ("ok", "parse_fail", "error")


class JudgeTransportError(RuntimeError):
    """The request could not be completed (network, timeout, HTTP error) after the backend's retries."""


class ReplyParseError(ValueError):
    """The reply does not have the format the prompt asked for."""


@dataclass
class JudgeReply(Generic[T]):
    value: T | None
    status: str
    raw: list[str] = field(default_factory=list)  # every reply received, in order (cached ones included)
    attempts: int = 0  # questions asked (1 + re-asks after unparsable replies)
    transport_retries: int = 0  # extra HTTP attempts after timeouts / 429 / 5xx
    cache_hits: int = 0
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Completion:
    text: str
    transport_retries: int = 0


class ChatJudge(ABC):
    def __init__(self, cache: ReplyCache | None = None, parse_retries: int = 2):
        if parse_retries < 0:
            raise ValueError(f"parse_retries must be >= 0, got {parse_retries}")
        self.cache = cache
        self.parse_retries = parse_retries

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Name recorded next to every score (judges drift; the report says which one was used)."""

    @abstractmethod
    def fingerprint(self) -> dict:
        """Everything besides the question that determines the reply (model, decoding settings)."""

    @abstractmethod
    def _complete(self, system: str | None, parts: Sequence[Part]) -> Completion:
        """One answered request; raises JudgeTransportError when it cannot get one."""

    def ask(self, parts: Sequence[Part], parse: Callable[[str], T], system: str | None = None) -> JudgeReply[T]:
        reply: JudgeReply[T] = JudgeReply(value=None, status="parse_fail")
        start = time.perf_counter()
        fingerprint = self.fingerprint()
        for attempt in range(self.parse_retries + 1):
            key = request_key(fingerprint, system, parts, attempt)
            text = self.cache.get(key) if self.cache is not None else None
            reply.attempts += 1
            if text is not None:
                reply.cache_hits += 1
            else:
                try:
                    completion = self._complete(system, parts)
                except JudgeTransportError as e:
                    reply.status, reply.error = "error", str(e)
                    break
                reply.transport_retries += completion.transport_retries
                text = completion.text
                if self.cache is not None:
                    self.cache.put(key, text)
            reply.raw.append(text)
            try:
                reply.value = parse(text)
            except ReplyParseError as e:
                reply.error = f"unparsable reply: {e}"
                continue
            reply.status, reply.error = "ok", None
            break
        reply.seconds = round(time.perf_counter() - start, 4)
        return reply
