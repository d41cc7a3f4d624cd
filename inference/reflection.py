"""Think, edit, reflect: after each edit the model judges its result and either stops or refines it.

One interleaved context holds the whole loop. Round 1 is a normal edit (source, instruction, optional plan, image).
Then the result enters the context (VAE + ViT tokens, as any input image), the model is asked
``data.reflection.REFLECTION_PROMPT`` and writes a verdict (``<reflect> verdict / reason / refined instruction
</reflect>``):

- ``success`` or ``failed``: stop;
- ``refine``: the verdict stays in the context and the next round edits *the previous result* (as ReasonEdit
  refines), following the refined instruction, which names only what is still wrong; successful parts are kept
  rather than redrawn from the source. The verdict is that round's plan (no new thinking). For classifier-free
  guidance the text-unconditional branch is the context up to the result image, so text guidance pushes towards
  the verdict's instruction; the image-unconditional branch has every text, the verdict included;
- a verdict that does not parse (an untrained model writes anything) stops the loop as ``unparsed``, recorded;
- after ``max_rounds`` edits the loop stops as ``budget`` (the last round is reflected on too, so every round has
  a verdict).

The training rows of kind ``reflection`` (``data/render.py``) are exactly one such round. ``verdict_writer``
replaces the model as the judge (tests script verdicts; an external judge could write them).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image

from data.metacot import MetaCoT
from data.reflection import REFLECTION_PROMPT, Reflection, ReflectionParseError, parse_reflection

from .inferencer import BagelInferencer, EditResult, noise_generator
from .planned_edit import plan_and_generate
from .settings import NoiseSource

DEFAULT_MAX_ROUNDS = 3
DEFAULT_VERDICT_TOKENS = 256
STOP_REASONS: tuple[str, ...] = ("success", "failed", "unparsed", "budget")


@dataclass(frozen=True)
class RoundView:
    """What a verdict writer judges: the source, the user's instruction and this round's result."""

    round: int
    source: Image.Image
    instruction: str
    result: Image.Image


VerdictWriter = Callable[[RoundView], str]


@dataclass
class ReflectionRound:
    round: int
    instruction: str  # what this round's edit followed: the user's, then each refined instruction
    image: Image.Image
    think_text: str | None
    verdict_text: str
    verdict: Reflection | None
    parse_error: str | None
    timings: dict

    @property
    def outcome(self) -> str:
        """success | refine | failed | unparsed"""
        return self.verdict.verdict if self.verdict is not None else "unparsed"

    def to_record(self) -> dict:
        return {"round": self.round, "instruction": self.instruction, "think_text": self.think_text,
                "verdict_text": self.verdict_text, "outcome": self.outcome,
                "verdict": None if self.verdict is None else self.verdict.to_dict(), "parse_error": self.parse_error,
                "timings": self.timings}


@dataclass
class ReflectionResult:
    """Every round, and why the loop stopped. ``image``, ``think_text``, ``timings`` and ``settings`` make it an
    edit result (the final image, round 1's plan, summed times)."""

    rounds: list[ReflectionRound]
    stop_reason: str
    max_rounds: int
    settings: dict = field(default_factory=dict)

    @property
    def image(self) -> Image.Image:
        return self.rounds[-1].image

    @property
    def think_text(self) -> str | None:
        return self.rounds[0].think_text

    @property
    def timings(self) -> dict:
        return {"total_s": sum(r.timings.get("total_s", 0.0) + r.timings.get("reflect_s", 0.0) for r in self.rounds),
                "rounds": len(self.rounds)}

    def to_record(self, image_paths: list[str] | None = None) -> dict:
        rounds = [r.to_record() for r in self.rounds]
        for entry, path in zip(rounds, image_paths or []):
            entry["image"] = path
        return {"max_rounds": self.max_rounds, "stop_reason": self.stop_reason, "rounds": rounds}


def read_verdict(text: str) -> tuple[Reflection | None, str | None]:
    try:
        return parse_reflection(text), None
    except ReflectionParseError as e:
        return None, str(e)


def reflect_and_edit(inferencer: BagelInferencer, image: Image.Image, instruction: str, *, think: bool = False,
                     seed: int = 0, max_rounds: int = DEFAULT_MAX_ROUNDS, cot: MetaCoT | None = None,
                     verdict_writer: VerdictWriter | None = None, max_verdict_tokens: int = DEFAULT_VERDICT_TOKENS,
                     noise: NoiseSource | None = None, on_step=None, **overrides) -> ReflectionResult:
    """Edit ``image`` by ``instruction``, then reflect and refine for at most ``max_rounds`` edits (module docstring).
    ``cot`` is a given plan for round 1 (as ``--cot-file``); ``overrides`` are InferenceSettings fields."""
    if not instruction.strip():
        raise ValueError("the instruction is empty; say what to change")
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    settings = inferencer.resolve_settings(overrides)
    verdict_settings = dataclasses.replace(settings, max_think_token_n=max_verdict_tokens)
    noise = noise or NoiseSource(seed, inferencer.device)
    start = time.perf_counter()
    contexts, _ = inferencer.prepare_edit(image, instruction, settings, think or cot is not None, noise)
    edit: EditResult = plan_and_generate(
        inferencer, contexts, settings, noise, think=think, thinking=None if cot is None else cot.render(),
        text_generator=noise_generator(seed), on_step=on_step, timings={"prefill_s": time.perf_counter() - start},
        start=start)

    def model_verdict(view: RoundView) -> str:
        return inferencer.generate_text(contexts.cond, verdict_settings, noise_generator(seed + view.round)).text

    write = verdict_writer or model_verdict
    rounds: list[ReflectionRound] = []
    round_instruction = instruction
    for number in range(1, max_rounds + 1):
        t0 = time.perf_counter()
        contexts.add_image(edit.image, noise)
        contexts.add_text(REFLECTION_PROMPT)
        text = write(RoundView(number, image, instruction, edit.image))
        verdict, error = read_verdict(text)
        rounds.append(ReflectionRound(number, round_instruction, edit.image, edit.think_text, text, verdict, error,
                                      {**edit.timings, "reflect_s": time.perf_counter() - t0}))
        if rounds[-1].outcome != "refine" or number == max_rounds:
            break
        t0 = time.perf_counter()
        contexts.add_reply(text)
        round_instruction = verdict.refined_instruction
        edit = plan_and_generate(inferencer, contexts, settings, noise, think=False, on_step=on_step,
                                 timings={"prefill_s": time.perf_counter() - t0}, start=t0)
    outcome = rounds[-1].outcome
    stop = "budget" if outcome == "refine" else outcome
    return ReflectionResult(rounds, stop, max_rounds, settings.to_dict())


class ReflectingEditor:
    """The benchmark editor contract with reflection, for ``eval_benchmark.py --editor-factory
    inference.reflection:ReflectingEditor.from_pretrained [--hyper max_rounds=N]``; results carry every round."""

    def __init__(self, inferencer: BagelInferencer, max_rounds: int = DEFAULT_MAX_ROUNDS):
        self.inferencer, self.max_rounds = inferencer, max_rounds

    @classmethod
    def from_pretrained(cls, model_path: str, device: str = "cuda", dtype: str = "bf16",
                        max_rounds: int = DEFAULT_MAX_ROUNDS) -> "ReflectingEditor":
        return cls(BagelInferencer.from_pretrained(model_path, device, dtype), max_rounds)

    def edit(self, image: Image.Image, instruction: str, *, think: bool = False, seed: int = 0,
             max_rounds: int | None = None, **hyper) -> ReflectionResult:
        return reflect_and_edit(self.inferencer, image, instruction, think=think, seed=seed,
                                max_rounds=max_rounds or self.max_rounds, **hyper)
