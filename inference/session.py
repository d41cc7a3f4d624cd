"""Multi-turn editing across command-line calls: a session folder keeps every turn and the next call continues it.

    DIR/session.json      ordered turns: input image, instruction, thinking, plan, seed, settings, output image
    DIR/input.png         the first turn's input (as decoded, RGB)
    DIR/turn-001.png ...  each turn's output; the next turn edits the last one

A new turn rebuilds the interleaved context from the stored turns without regenerating them (each earlier turn's
input image, instruction and plan are re-added, and its random draws are skipped), then edits the last output with
the new instruction. Turn k draws from the stream of its own seed advanced past the draws of the earlier turns, so a
session whose turns share a seed gives exactly ``BagelInferencer.edit_turns``' images. The thinking system prompt
is in the context when the first turn thought.

Crash safety: a turn's image is written first and ``session.json`` (with the turn) last, each atomically, so a turn
is recorded whole or not at all; an unrecorded image left by a crash is overwritten when the turn is redone.
``replay`` regenerates every turn of a session into a new folder from its stored instructions, seeds and settings
(plans from a file are reused, the model's plans are written again).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import MISSING, asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from data.metacot import MetaCoT, MetaCoTParseError, parse_metacot
from data.prompts import THINK_GENERATION_SYSTEM_PROMPT
from data.transforms import to_rgb

from .benchmark.files import atomic_write_json, atomic_write_png
from .contexts import GuidanceContexts
from .edit_io import InputError
from .inferencer import BagelInferencer, EditResult, noise_generator
from .planned_edit import plan_and_generate
from .settings import InferenceSettings, NoiseSource

SESSION_FILE, INPUT_IMAGE = "session.json", "input.png"
FORMAT, VERSION = "metacot-edit-session", 1
# what a session folder may hold before its session.json exists: leftovers of a first turn that crashed
_OWN_FILES = re.compile(r"^(input\.png|turn-\d{3,}\.png|\..*\.tmp)$")


class SessionError(InputError):
    """The session folder or its session.json is unusable; the message says which and how to fix it."""


@dataclass
class SessionTurn:
    turn: int
    input_image: str  # relative to the session folder
    instruction: str
    think: bool  # the model wrote the plan
    think_text: str | None  # the plan in context (the model's, or one from --cot-file)
    cot_source: str | None  # "model" | "file" | None
    seed: int
    settings: dict  # InferenceSettings as used
    output_image: str
    cot: dict | None = None  # the plan parsed as a Meta-CoT, when it is one
    timings: dict | None = None
    model: dict | None = None  # model_path / device / dtype of the call
    finished_at: str = ""

    @classmethod
    def from_dict(cls, data: object, number: int) -> "SessionTurn":
        if not isinstance(data, dict):
            raise SessionError(f"turn {number} is not a JSON object")
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise SessionError(f"turn {number} lacks {missing}")
        turn = cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
        if turn.turn != number or not isinstance(turn.instruction, str) or not turn.instruction.strip():
            raise SessionError(f"turn {number} has a bad number or instruction")
        if not isinstance(turn.settings, dict) or not isinstance(turn.seed, int):
            raise SessionError(f"turn {number} has bad settings or seed")
        return turn


class Session:
    def __init__(self, root: Path, turns: list[SessionTurn], created_at: str):
        self.root, self.turns, self.created_at = root, turns, created_at

    # --------------------------------------------------------------------------------------------- opening
    @classmethod
    def open(cls, root: str | Path) -> "Session":
        """The session in ``root``: its stored turns, or none for a new or empty folder. Reads only."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise SessionError(f"--session {root} is a file, not a session folder; pass a folder")
        path = root / SESSION_FILE
        if not path.exists():
            strays = sorted(p.name for p in root.iterdir() if not _OWN_FILES.match(p.name)) if root.is_dir() else []
            if strays:
                raise SessionError(f"--session {root} is not a session folder (no {SESSION_FILE}, but it holds "
                                   f"{', '.join(strays[:3])}); pass a new or empty folder")
            return cls(root, [], "")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SessionError(f"session {root} is damaged: {SESSION_FILE} is not readable JSON ({e})") from None
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
                raise SessionError(f"{SESSION_FILE} is not a {FORMAT} version {VERSION} file")
            if not isinstance(data.get("turns"), list) or not data["turns"]:
                raise SessionError(f"{SESSION_FILE} has no turns")
            turns = [SessionTurn.from_dict(t, i) for i, t in enumerate(data["turns"], 1)]
            for turn in turns:
                for name in (turn.input_image, turn.output_image):
                    if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts \
                            or not (root / name).is_file():
                        raise SessionError(f"turn {turn.turn}'s image {name!r} is missing from the folder")
        except SessionError as e:
            raise SessionError(f"session {root} is damaged: {e}; restore {SESSION_FILE} or start a new "
                               "--session folder") from None
        return cls(root, turns, str(data.get("created_at", "")))

    @property
    def exists(self) -> bool:
        return bool(self.turns)

    def check_next_turn(self, starting: bool) -> None:
        """A new session starts from an image; an existing one continues from its last output."""
        if starting and self.exists:
            raise SessionError(f"session {self.root} already has {len(self.turns)} turns; omit --image to continue "
                               "it, or pass a new --session folder")
        if not starting and not self.exists:
            raise SessionError(f"session {self.root} has no turns yet; pass --image to start it")

    def image(self, name: str) -> Image.Image:
        try:
            with Image.open(self.root / name) as img:
                img.load()
                return img.copy()
        except (OSError, UnidentifiedImageError) as e:
            raise SessionError(f"session {self.root} is damaged: {name} does not decode ({e})") from None

    def next_input(self) -> Image.Image:
        return self.image(self.turns[-1].output_image)

    # --------------------------------------------------------------------------------------------- writing
    def record(self, turn: SessionTurn, output: Image.Image, first_input: Image.Image | None = None) -> None:
        """Write the turn's image(s), then session.json with the turn: the turn is recorded whole or not at all."""
        self.root.mkdir(parents=True, exist_ok=True)
        if first_input is not None:
            atomic_write_png(self.root / INPUT_IMAGE, first_input)
        atomic_write_png(self.root / turn.output_image, output)
        created = self.created_at or _now()
        atomic_write_json(self.root / SESSION_FILE, {"format": FORMAT, "version": VERSION, "created_at": created,
                                                     "turns": [asdict(t) for t in [*self.turns, turn]]})
        self.turns.append(turn)
        self.created_at = created


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _skip_image_draws(inferencer: BagelInferencer, noise: NoiseSource, image_hw: tuple[int, int]) -> None:
    """Draw (and drop) the initial noise a turn at ``image_hw`` drew, so later turns draw what they drew then."""
    stride = inferencer.bundle.vae.downsample * inferencer.bundle.config.bagel.latent_patch_size
    noise.draw("init_noise", ((image_hw[0] // stride) * (image_hw[1] // stride),
                              inferencer.bundle.config.patch_latent_dim))


def rebuild_contexts(inferencer: BagelInferencer, session: Session, settings: InferenceSettings, noise: NoiseSource,
                     thinks_first: bool) -> GuidanceContexts:
    """The context after the stored turns, re-added without generating anything."""
    contexts = inferencer.new_contexts(settings, for_generation=True)
    if thinks_first:
        contexts.add_system_prompt(THINK_GENERATION_SYSTEM_PROMPT)
    for turn in session.turns:
        contexts.add_image(session.image(turn.input_image), noise)
        contexts.add_text(turn.instruction)
        if turn.think_text is not None:
            contexts.add_thinking(turn.think_text)
        _skip_image_draws(inferencer, noise, contexts.image_hw)
    return contexts


def _parsed_cot(text: str | None) -> dict | None:
    try:
        return None if text is None else parse_metacot(text).to_dict()
    except MetaCoTParseError:
        return None


def run_turn(inferencer: BagelInferencer, session: Session, instruction: str, *, image: Image.Image | None = None,
             think: bool = False, seed: int = 0, cot: MetaCoT | str | None = None, model: dict | None = None,
             on_step=None, **overrides) -> tuple[SessionTurn, EditResult]:
    """Edit the session's last output (or ``image``, which starts a new session) and record the turn.

    ``cot`` is a given plan: a Meta-CoT, or the exact thinking text of a stored turn (replays)."""
    if not instruction.strip():
        raise InputError("the instruction is empty; pass --instruction \"what to change\"")
    session.check_next_turn(starting=image is not None)
    settings = inferencer.resolve_settings(overrides)
    thinking = cot.render() if isinstance(cot, MetaCoT) else cot
    thinks = think or thinking is not None
    noise = NoiseSource(seed, inferencer.device)
    start = time.perf_counter()
    source = to_rgb(image) if image is not None else session.next_input()
    thinks_first = session.turns[0].think_text is not None if session.exists else thinks
    contexts = rebuild_contexts(inferencer, session, settings, noise, thinks_first)
    contexts.add_image(source, noise)
    contexts.add_text(instruction)
    number = len(session.turns) + 1
    result = plan_and_generate(inferencer, contexts, settings, noise, think=think, thinking=thinking,
                               text_generator=noise_generator(seed + number - 1), on_step=on_step,
                               timings={"prefill_s": time.perf_counter() - start}, start=start)
    turn = SessionTurn(number, session.turns[-1].output_image if session.exists else INPUT_IMAGE, instruction,
                       think and thinking is None, result.think_text,
                       "file" if thinking is not None else ("model" if think else None), seed, result.settings,
                       f"turn-{number:03d}.png", _parsed_cot(result.think_text), result.timings, model, _now())
    session.record(turn, result.image, first_input=source if image is not None else None)
    return turn, result


def replay(inferencer: BagelInferencer, session: Session, target: str | Path, model: dict | None = None,
           on_step=None) -> list[dict]:
    """Regenerate every turn of ``session`` into the new session folder ``target``; per turn, how far the new image
    is from the stored one (largest pixel difference, 0 = identical)."""
    copy = Session.open(target)
    if copy.exists or (copy.root.exists() and any(copy.root.iterdir())):
        raise SessionError(f"--replay {copy.root} is not empty; replay into a new folder")
    report = []
    for turn in session.turns:
        settings = {k: v for k, v in turn.settings.items() if k != "extra"}
        _, result = run_turn(inferencer, copy, turn.instruction, seed=turn.seed, think=turn.think,
                             image=session.image(turn.input_image) if turn.turn == 1 else None,
                             cot=turn.think_text if turn.cot_source == "file" else None, model=model,
                             on_step=on_step, **settings)
        stored = np.asarray(session.image(turn.output_image).convert("RGB"), dtype=np.int16)
        new = np.asarray(result.image.convert("RGB"), dtype=np.int16)
        diff = int(np.abs(stored - new).max()) if stored.shape == new.shape else None
        report.append({"turn": turn.turn, "instruction": turn.instruction, "max_pixel_difference": diff,
                       "identical": diff == 0})
    return report
