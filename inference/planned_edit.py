"""The last step of an edit once its context is built, with the plan written by the model, given, or absent.

The reflection loop, ``--cot-file`` edits and sessions build their contexts themselves (more turns, a result image,
a verdict) and finish through this function, which uses the inferencer's own think-then-denoise step.
"""

from __future__ import annotations

import time

import torch

from .contexts import GuidanceContexts
from .inferencer import BagelInferencer, EditResult, noise_generator
from .settings import InferenceSettings, NoiseSource


def plan_and_generate(inferencer: BagelInferencer, contexts: GuidanceContexts, settings: InferenceSettings,
                      noise: NoiseSource, *, think: bool, thinking: str | None = None,
                      text_generator: torch.Generator | None = None, on_step=None, timings: dict | None = None,
                      start: float | None = None) -> EditResult:
    """Given ``thinking`` is the plan as it stands (nothing decoded); else with ``think`` the model writes one. The
    image is then denoised at the size of the last image in ``contexts``."""
    start = time.perf_counter() if start is None else start
    if thinking is not None:
        contexts.add_thinking(thinking)
    result = inferencer.think_and_generate(contexts, contexts.image_hw, settings, noise, think and thinking is None,
                                           text_generator or noise_generator(0), on_step,
                                           {} if timings is None else timings, start)
    if thinking is not None:
        result.think_text = thinking
    return result
