"""User-edited reasoning: a Meta-CoT from a file replaces the model's plan, and the edit follows it.

The file holds a Meta-CoT in the rendered layout of ``data/metacot.py`` (``<think>`` tags optional; e.g. a copy of
the model's own plan with a box moved or another target) or its JSON record. It is parsed (a bad file is a one-line
error naming the line and the problem), rendered back to exactly the training text, and added to the context as
the thinking, so the image is generated as if the model had written that plan itself.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from PIL import Image

from data.metacot import MetaCoT, MetaCoTParseError, parse_metacot

from .edit_io import InputError
from .inferencer import BagelInferencer, EditResult
from .planned_edit import plan_and_generate
from .settings import NoiseSource


def read_cot_file(path: str | Path) -> MetaCoT:
    """The Meta-CoT in ``path``, or ``InputError`` naming the file, the line and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"CoT file {path} does not exist; pass a Meta-CoT text or JSON file to --cot-file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"CoT file {path} is not UTF-8 text") from None
    if not text.strip():
        raise InputError(f"CoT file {path} is empty; write a Meta-CoT (print one with --print-cot)")
    try:
        if text.lstrip().startswith("{"):
            return MetaCoT.from_dict(json.loads(text))
        return parse_metacot(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except MetaCoTParseError as e:
        where = f"{path}:{e.line}" if e.line is not None else str(path)
        raise InputError(f"{where}: {e.message}") from None


def describe_cot(text: str | None) -> str:
    """The plan as ``--print-cot`` shows it: the triplet, the meta-tasks and each target with its box."""
    if text is None:
        return "CoT: none (pass --think or --cot-file)"
    try:
        cot = parse_metacot(text)
    except MetaCoTParseError as e:
        return f"CoT (not a Meta-CoT: {e}):\n{text}"
    lines = ["CoT:", f"  task: {cot.task}", f"  target: {cot.target}", f"  ability: {cot.ability}",
             f"  meta-tasks: {', '.join(cot.meta_tasks)}", "  targets:"]
    for i, step in enumerate(cot.traversal, 1):
        box = "no box" if step.box is None else "box [" + ", ".join(map(str, step.box)) + "]"
        lines.append(f"    {i}. {step.target} | {box} | {step.meta_task} | {step.operation}")
    if not cot.traversal:
        lines.append("    (none)")
    return "\n".join(lines)


def edit_with_cot(inferencer: BagelInferencer, image: Image.Image, instruction: str, cot: MetaCoT, *, seed: int = 0,
                  noise: NoiseSource | None = None, on_step=None, **overrides) -> EditResult:
    """Edit ``image`` by ``instruction`` following ``cot`` instead of a plan of the model's own."""
    if not instruction.strip():
        raise ValueError("the instruction is empty; say what to change")
    settings = inferencer.resolve_settings(overrides)
    noise = noise or NoiseSource(seed, inferencer.device)
    start = time.perf_counter()
    contexts, _ = inferencer.prepare_edit(image, instruction, settings, True, noise)
    timings = {"prefill_s": time.perf_counter() - start}
    return plan_and_generate(inferencer, contexts, settings, noise, think=True,
                             thinking=cot.render(with_think_tags=True), on_step=on_step, timings=timings, start=start)
