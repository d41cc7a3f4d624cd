"""Judges behind one interface (``ChatJudge.ask``): an OpenAI-compatible HTTP client and a local Qwen2.5-VL.

The local backend (``judges.qwen_local``) imports torch and transformers, so it is imported only when built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from inference.benchmark.judges.base import ChatJudge, JudgeReply, JudgeTransportError, ReplyParseError
from inference.benchmark.judges.cache import ReplyCache
from inference.benchmark.judges.openai_chat import OpenAIChatConfig, OpenAIChatJudge

JUDGE_BACKENDS: tuple[str, ...] = ("openai", "qwen_local", "exact")


@dataclass(frozen=True)
class JudgeSettings:
    """What every backend shares; the HTTP client's own settings (URL, key, retries, ...) live in ``openai``."""

    backend: str = "openai"
    model: str = "gpt-4.1-2025-04-14"  # chat model name, or the local Qwen2.5-VL folder for qwen_local
    concurrency: int = 8  # judge calls in flight while scoring
    parse_retries: int = 2
    max_tokens: int = 1400
    device: str = "cuda"  # qwen_local
    dtype: str = "bfloat16"  # qwen_local
    use_cache: bool = True
    openai: OpenAIChatConfig = field(default_factory=OpenAIChatConfig)

    def __post_init__(self) -> None:
        if self.backend not in JUDGE_BACKENDS:
            raise ValueError(f"judge {self.backend!r} unknown; choose from {', '.join(JUDGE_BACKENDS)}")


def build_judge(settings: JudgeSettings, cache_dir: str | os.PathLike | None) -> ChatJudge | None:
    """The chat judge the settings describe (None for the 'exact' backend, which needs no model)."""
    cache = ReplyCache(cache_dir) if settings.use_cache and cache_dir is not None else None
    if settings.backend == "exact":
        return None
    if settings.backend == "openai":
        config = replace(settings.openai, model=settings.model, max_concurrency=settings.concurrency,
                         max_tokens=settings.max_tokens)
        return OpenAIChatJudge(config, cache, settings.parse_retries)
    from inference.benchmark.judges.qwen_local import QwenLocalConfig, QwenLocalJudge

    if not Path(settings.model).is_dir():
        raise FileNotFoundError(f"--judge qwen_local needs --judge-model DIR (a local Qwen2.5-VL folder); "
                                f"{settings.model!r} is not a folder")
    config = QwenLocalConfig(model_path=settings.model, device=settings.device, dtype=settings.dtype,
                             max_new_tokens=settings.max_tokens)
    return QwenLocalJudge.from_pretrained(config, cache, settings.parse_retries)


__all__ = ["ChatJudge", "JudgeReply", "JudgeTransportError", "ReplyParseError", "ReplyCache", "OpenAIChatConfig",
           "OpenAIChatJudge", "JudgeSettings", "build_judge", "JUDGE_BACKENDS"]
