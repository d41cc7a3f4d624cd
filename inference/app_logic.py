"""What the web app's controls do, with no web framework in sight: app.py lays out the page and calls these.

One model serves every browser session: each call runs in a worker thread under a lock, and the callers are
generators that yield the chain of thought as it is written and the denoising progress, then the result. When the
page stops listening (tab closed, run cancelled) the model call stops at its next token or denoising step.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field, fields
from typing import Callable, Iterator

import torch
from PIL import Image

from modeling.diffusion.guidance import RENORM_TYPES

from .inferencer import BagelInferencer, EditResult, TurnState
from .settings import InferenceSettings


class AppInputError(ValueError):
    """Bad input on the page or the command line; the message is one line naming the problem and the fix."""


# ------------------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class Knob:
    """One ``InferenceSettings`` field as a control: tuples are typed as space-separated numbers."""

    name: str
    default: bool | int | float | str | tuple
    choices: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    @property
    def shown_default(self) -> bool | int | float | str:
        return " ".join(map(str, self.default)) if isinstance(self.default, tuple) else self.default

    def parse(self, value) -> bool | int | float | str | tuple:
        kind = type(self.default)
        try:
            if kind is tuple:
                parts = str(value).replace(",", " ").split()
                if len(parts) != len(self.default):
                    raise ValueError
                return tuple(type(d)(_number(p, type(d))) for d, p in zip(self.default, parts))
            if kind is str:
                return str(value)
            return _number(value, kind)
        except (TypeError, ValueError):
            example = self.shown_default
            raise AppInputError(f"{self.label}: {value!r} is not valid; give a value like {example!r}") from None


def _number(value, kind: type) -> bool | int | float:
    if kind is bool:
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return bool(value)
    number = float(value)
    if kind is int and number != int(number):
        raise ValueError(value)
    return kind(number)


def settings_knobs(defaults: InferenceSettings | None = None) -> list[Knob]:
    defaults = defaults or InferenceSettings()
    return [Knob(f.name, getattr(defaults, f.name), RENORM_TYPES if f.name == "cfg_renorm_type" else ())
            for f in fields(InferenceSettings) if f.name != "extra"]


def knob_overrides(knobs: list[Knob], values: list) -> dict:
    """Control values (in ``knobs`` order) -> validated ``InferenceSettings`` overrides."""
    overrides = {knob.name: knob.parse(value) for knob, value in zip(knobs, values, strict=True)}
    try:
        InferenceSettings.from_dict(overrides)
    except ValueError as e:
        raise AppInputError(str(e)) from None
    return overrides


def settings_from_assignments(assignments: list[str]) -> InferenceSettings:
    """``["num_timesteps=10", "cfg_interval=0.4 1"]`` -> settings (the page's starting values)."""
    by_name = {k.name: k for k in settings_knobs()}
    values = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in by_name:
            raise AppInputError(f"--set {item!r}: expected NAME=VALUE with NAME one of {sorted(by_name)}")
        values[name.strip()] = by_name[name.strip()].parse(value.strip())
    try:
        return InferenceSettings.from_dict(values)
    except ValueError as e:
        raise AppInputError(str(e)) from None


def resolve_device(device: str) -> str:
    """auto: the GPU when one is visible, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AppInputError(f"--device {device} but no CUDA GPU is visible; use --device cpu")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """auto: bf16 on a GPU, fp32 on the CPU (bf16 matmuls are slow there)."""
    return ("bf16" if device.startswith("cuda") else "fp32") if dtype == "auto" else dtype


def format_timings(timings: dict[str, float]) -> str:
    parts = [f"prefill {timings['prefill_s']:.2f} s"]
    if "think_s" in timings:
        parts.append(f"thinking {timings['think_s']:.2f} s ({timings['think_tokens']} tokens)")
    parts += [f"denoise + decode {timings['denoise_decode_s']:.2f} s", f"total {timings['total_s']:.2f} s"]
    return " · ".join(parts)


# -------------------------------------------------------------------------------------------------- model calls
@dataclass
class Progress:
    """One update of the page: the text written so far, a status line, and the image once it exists."""

    text: str
    status: str
    image: Image.Image | None = None


@dataclass
class EditSession:
    """A browser session's multi-turn edit: the model's contexts with every turn so far, and the images shown."""

    turns: TurnState | None = None
    history: list[tuple[Image.Image, str]] = field(default_factory=list)  # (image, caption), the input first


class _Cancelled(Exception):
    """The page stopped listening; raised inside the model call at its next token or step."""


class AppModel:
    """The loaded model shared by all sessions."""

    def __init__(self, inferencer: BagelInferencer, description: str):
        self.inferencer, self.description = inferencer, description
        self._lock = threading.Lock()

    def max_image_side(self) -> int:
        """The largest image side the model's latent position table covers (text-to-image sizes)."""
        cfg = self.inferencer.bundle.config
        return cfg.bagel.max_latent_size * self.image_stride()

    def image_stride(self) -> int:
        return self.inferencer.bundle.vae.downsample * self.inferencer.bundle.config.bagel.latent_patch_size

    def stream(self, call: Callable[[Callable, Callable], object], status: str) -> Iterator[tuple[str, str, object]]:
        """Runs ``call(on_text, on_step)`` in a worker thread; yields (text so far, status, result or None)."""
        events: queue.Queue = queue.Queue()
        stop = threading.Event()

        def on_text(piece: str) -> None:
            if stop.is_set():
                raise _Cancelled
            events.put(("text", piece))

        def on_step(step: int, total: int) -> None:
            if stop.is_set():
                raise _Cancelled
            events.put(("status", f"denoising: step {step}/{total}"))

        def work() -> None:
            try:
                with self._lock:
                    events.put(("done", call(on_text, on_step)))
            except _Cancelled:
                pass
            except Exception as e:  # shown on the page by the caller
                events.put(("error", e))

        threading.Thread(target=work, name="model-call", daemon=True).start()
        text = ""
        try:
            while True:
                batch = [events.get()]
                while not events.empty():  # coalesce what queued up while the page was busy
                    batch.append(events.get())
                result = None
                for kind, value in batch:
                    if kind == "error":
                        raise value
                    if kind == "text":
                        text += value
                    elif kind == "status":
                        status = value
                    else:
                        result = value
                yield text, status, result
                if result is not None:
                    return
        finally:
            stop.set()

    def edit(self, session: EditSession, image: Image.Image | None, instruction: str, think: bool, seed: int,
             overrides: dict, continue_from_result: bool = False) -> Iterator[tuple[EditSession, Progress]]:
        """A new edit of ``image`` (a fresh session), or the next turn on the last result with the earlier turns in
        context (the session keeps the first turn's thinking mode, seed and settings)."""
        if continue_from_result:
            if session.turns is None:
                raise AppInputError("nothing to continue from: edit an image first (or the last turn did not finish)")
            source = session.history[-1][0]
        else:
            if image is None:
                raise AppInputError("no input image: upload an image to edit")
            session, source = EditSession(history=[(image, "input")]), image
        if not instruction.strip():
            raise AppInputError("the instruction is empty; say what to change")
        turn = len(session.history)

        def call(on_text, on_step) -> EditResult:
            try:
                if session.turns is None:
                    session.turns = self.inferencer.start_turns(think=think, seed=seed, **overrides)
                return self.inferencer.edit_turn(session.turns, source, instruction, on_text=on_text,
                                                 on_step=on_step)
            except BaseException:
                session.turns = None  # the contexts hold a half-added turn: continuing from them would mislead
                raise

        status = "thinking…" if (session.turns.think if session.turns else think) else "denoising…"
        for text, status, result in self.stream(call, status):
            if result is None:
                yield session, Progress(text, status)
            else:
                session.history.append((result.image, f"{turn}. {instruction}"))
                yield session, Progress(text, f"turn {turn}: {format_timings(result.timings)}", result.image)

    def understand(self, image: Image.Image | None, question: str, think: bool, seed: int,
                   overrides: dict) -> Iterator[Progress]:
        if image is None:
            raise AppInputError("no image: upload the image to ask about")
        if not question.strip():
            raise AppInputError("the question is empty; ask something about the image")

        def call(on_text, on_step) -> str:
            return self.inferencer.understand(image, question, think=think, seed=seed, on_text=on_text, **overrides)

        for text, status, result in self.stream(call, "writing…"):
            yield Progress(result if result is not None else text, "done" if result is not None else status)

    def text_to_image(self, prompt: str, height: int, width: int, think: bool, seed: int,
                      overrides: dict) -> Iterator[Progress]:
        """Image guidance is off (cfg_img_scale 1): without an input image its branch would equal the cond one."""
        if not prompt.strip():
            raise AppInputError("the prompt is empty; describe the image")
        stride, limit = self.image_stride(), self.max_image_side()
        for name, side in (("height", height), ("width", width)):
            if side % stride or not stride <= side <= limit:
                raise AppInputError(f"{name} {side} must be a multiple of {stride} between {stride} and {limit}")

        def call(on_text, on_step) -> EditResult:
            return self.inferencer.text_to_image(prompt, int(height), int(width), think=think, seed=seed,
                                                 on_text=on_text, on_step=on_step,
                                                 **{**overrides, "cfg_img_scale": 1.0})

        for text, status, result in self.stream(call, "thinking…" if think else "denoising…"):
            if result is None:
                yield Progress(text, status)
            else:
                yield Progress(text, format_timings(result.timings), result.image)


def load_app_model(model_path: str, device: str, dtype: str) -> AppModel:
    """Load the checkpoint for the app (``device`` / ``dtype`` may be ``auto``)."""
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    inferencer = BagelInferencer.from_pretrained(str(model_path), device, dtype)
    return AppModel(inferencer, f"{model_path} on {device} ({dtype})")
