"""The CEC reward: a vision-language judge scores 0-10 how well the edit agrees with its chain of thought.

The question, its parsing and the re-asks are evaluation's (``inference.benchmark.scorers.cec.score_cec``), so the
reward the policy is trained on is the score the CEC evaluation reports. As there, the judge sees the source image,
the edited image and the CoT's plan (task, targets, operations); the instruction is left out on purpose (CEC measures
agreement between the reasoning and the edit, not whether the reasoning was right). The judge is any
OpenAI-compatible server (vLLM, SGLang, a hosted API) or Qwen2.5-VL in-process (``backend: qwen_local``).
A sample without CoT, or whose judge call still fails after the transport and parse retries, is dropped.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from inference.benchmark.judges import ChatJudge, JudgeSettings, OpenAIChatConfig, build_judge
from inference.benchmark.scorers.cec import CECResult, score_cec
from train.rl.rewards.base import RewardRequest, RewardResult


@dataclass(frozen=True)
class CECSettings:
    """The ``reward.settings`` of ``kind: cec`` (HTTP fields apply to ``backend: openai`` only)."""

    backend: str = "openai"  # "openai" (any OpenAI-compatible server) or "qwen_local"
    model: str = "Qwen/Qwen2.5-VL-72B-Instruct"  # served model name, or the Qwen2.5-VL folder for qwen_local
    base_url: str = "http://127.0.0.1:8000/v1"  # the reward server (scripts start it, or give an external URL)
    api_key_env: str = "OPENAI_API_KEY"
    auth_header: str = "bearer"  # "bearer" or "api-key" (Azure)
    timeout_s: float = 120.0
    max_retries: int = 5  # transport retries per request (the openai SDK's, with backoff)
    concurrency: int = 16  # judge requests in flight
    parse_retries: int = 2  # re-asks after an unparsable reply
    max_tokens: int = 1400
    max_image_side: int | None = None  # downscale images before sending
    cache_dir: str | None = None  # reply cache; rollouts are new images, so off by default
    device: str = "cuda"  # qwen_local
    dtype: str = "bfloat16"  # qwen_local

    def __post_init__(self) -> None:
        if self.backend not in ("openai", "qwen_local"):
            raise ValueError(f"cec backend {self.backend!r} must be 'openai' or 'qwen_local'")
        if self.concurrency < 1:
            raise ValueError(f"cec concurrency must be >= 1, got {self.concurrency}")

    def judge_settings(self) -> JudgeSettings:
        client = OpenAIChatConfig(base_url=self.base_url, model=self.model, api_key_env=self.api_key_env,
                                  auth_header=self.auth_header, timeout_s=self.timeout_s,
                                  max_retries=self.max_retries, max_image_side=self.max_image_side)
        return JudgeSettings(backend=self.backend, model=self.model, concurrency=self.concurrency,
                             parse_retries=self.parse_retries, max_tokens=self.max_tokens, device=self.device,
                             dtype=self.dtype, use_cache=self.cache_dir is not None, openai=client)


def reward_result(result: CECResult) -> RewardResult:
    if result.status == "ok":
        return RewardResult(result.score, {"cec": result.score})
    detail = result.reply.error if result.reply is not None else "the request has no CoT text"
    return RewardResult(None, error=f"cec {result.status}: {detail}")


class CECReward:
    name = "cec"

    def __init__(self, judge: ChatJudge, concurrency: int = 16):
        self.judge = judge
        self.concurrency = concurrency

    def _score_one(self, request: RewardRequest) -> RewardResult:
        return reward_result(score_cec(self.judge, request.source_image, request.edited_image, request.cot_text))

    def __call__(self, requests: Sequence[RewardRequest]) -> list[RewardResult]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests)),
                                thread_name_prefix="cec-reward") as pool:
            return list(pool.map(self._score_one, requests))


def build_cec_reward(**settings) -> CECReward:
    unknown = sorted(set(settings) - set(CECSettings.__dataclass_fields__))
    if unknown:
        raise ValueError(f"reward 'cec': unknown setting(s) {unknown}; accepted: "
                         f"{', '.join(CECSettings.__dataclass_fields__)}")
    cfg = CECSettings(**settings)
    return CECReward(build_judge(cfg.judge_settings(), cfg.cache_dir), cfg.concurrency)
