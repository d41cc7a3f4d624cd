"""The Meta-CoT chain of thought: a typed record, its training text, and the parser back.

A Meta-CoT decomposes an edit into a *triplet* (task, target, required understanding ability) and walks it in three
steps: (1) meta-task summary over the five meta-tasks, (2) task thinking, (3) target traversal, one line per target.
Target lines may carry a bounding box (``[x0, y0, x1, y1]``, integers in [0, 1000) of the image size, see
``data/boxes.py``), which is how grounding enters the CoT and how a user edits the reasoning by hand. As the paper's
traversal decides for every target whether and how it changes, a line may also say that a target stays as it is:
``- TARGET [box] | Keep | keep it unchanged`` (``KEEP`` is a line marker, not a sixth meta-task: Step 1 names
meta-tasks only). Step 2 may be left out (the ablation without task thinking): an empty ``task_thinking`` renders no
Step 2 line.

The rendered text is what the model writes inside ``<think> ... </think>`` before editing; ``parse_metacot`` reads
any text in that layout back (also when the user edited it), and raises ``MetaCoTParseError`` on malformed text,
naming the line (1-based, in the text given) where it can.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from data.boxes import Box, box_problem
from data.tagged_text import tagged_span

META_TASKS: tuple[str, ...] = ("Addition", "Deletion", "Replacement", "Camera Motion", "Position Change")
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
KEEP = "Keep"  # a target line whose target stays unchanged


class MetaCoTParseError(ValueError):
    """The text is not a Meta-CoT in the layout of ``MetaCoT.render``; ``line`` is where, when one line is at fault
    (``field`` names the record field at fault, so a parser can find its line)."""

    def __init__(self, message: str, line: int | None = None, field: str | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.message, self.line, self.field = message, line, field


@dataclass
class TargetStep:
    """One line of step 3: which meta-task is applied to which target and how, or ``KEEP`` for a target that stays."""

    target: str
    meta_task: str
    operation: str
    box: Box | None = None

    def __post_init__(self) -> None:
        if self.meta_task not in META_TASKS and self.meta_task != KEEP:
            raise MetaCoTParseError(f"unknown meta-task {self.meta_task!r}; expected one of {', '.join(META_TASKS)} "
                                    f"or {KEEP!r}")
        if self.box is not None:
            self.box = tuple(self.box)
            if (problem := box_problem(self.box)) is not None:
                raise MetaCoTParseError(problem)

    @property
    def keeps(self) -> bool:
        return self.meta_task == KEEP


@dataclass
class MetaCoT:
    task: str
    target: str
    ability: str
    meta_tasks: list[str]
    summary: str
    task_thinking: str
    traversal: list[TargetStep] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.meta_tasks:
            raise MetaCoTParseError("a Meta-CoT names at least one meta-task", field="meta_tasks")
        unknown = [m for m in self.meta_tasks if m not in META_TASKS]
        if unknown:
            raise MetaCoTParseError(f"unknown meta-task(s) {unknown}; expected among {', '.join(META_TASKS)}",
                                    field="meta_tasks")
        for name in ("task", "target", "ability"):
            if not getattr(self, name).strip():
                raise MetaCoTParseError(f"the triplet field {name!r} is empty", field=name)

    def render(self, with_think_tags: bool = True) -> str:
        lines = [
            f"Task: {self.task}",
            f"Target: {self.target}",
            f"Understanding ability: {self.ability}",
            f"Step 1 - Meta-task summary: {' + '.join(self.meta_tasks)}. {self.summary}".rstrip(),
            *([f"Step 2 - Task thinking: {self.task_thinking}"] if self.task_thinking else []),
            "Step 3 - Target traversal:",
        ]
        for step in self.traversal:
            box = "" if step.box is None else " [" + ", ".join(str(v) for v in step.box) + "]"
            lines.append(f"- {step.target}{box} | {step.meta_task} | {step.operation}")
        body = "\n".join(lines)
        return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}" if with_think_tags else body

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "target": self.target,
            "ability": self.ability,
            "meta_tasks": list(self.meta_tasks),
            "summary": self.summary,
            "task_thinking": self.task_thinking,
            "traversal": [
                {"target": s.target, "meta_task": s.meta_task, "operation": s.operation,
                 "box": None if s.box is None else list(s.box)}
                for s in self.traversal
            ],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "MetaCoT":
        try:
            traversal = [
                TargetStep(s["target"], s["meta_task"], s["operation"], None if s.get("box") is None else tuple(s["box"]))
                for s in d.get("traversal", [])
            ]
            return cls(d["task"], d["target"], d["ability"], list(d["meta_tasks"]), d.get("summary", ""),
                       d.get("task_thinking", ""), traversal)
        except (KeyError, TypeError) as e:
            raise MetaCoTParseError(f"Meta-CoT record is missing or has a bad field: {e}") from e


_FIELD = {  # [ \t]*: an empty field must not swallow the next line
    "task": re.compile(r"^Task:[ \t]*(.*)$", re.M),
    "target": re.compile(r"^Target:[ \t]*(.*)$", re.M),
    "ability": re.compile(r"^Understanding ability:[ \t]*(.*)$", re.M),
    "step1": re.compile(r"^Step 1 - Meta-task summary:[ \t]*(.*)$", re.M),
}
_STEP2 = re.compile(r"^Step 2 - Task thinking:[ \t]*(.*)$", re.M)  # optional
_STEP3 = "Step 3 - Target traversal:"
_TARGET_LINE = re.compile(
    r"^-\s*(?P<target>[^|\[]+?)\s*(?:\[(?P<box>[^\]]*)\])?\s*\|\s*(?P<meta>[^|]+?)\s*\|\s*(?P<op>.*)$")


def _think_body(text: str) -> tuple[str, int]:
    """The text between ``<think>`` and ``</think>`` (the whole text if untagged), stripped, and its first line."""
    begin, end = tagged_span(text, THINK_OPEN, THINK_CLOSE, MetaCoTParseError)
    inner = text[begin:end]
    begin += len(inner) - len(inner.lstrip())
    return inner.strip(), text.count("\n", 0, begin) + 1


def strip_think_tags(text: str) -> str:
    """The text between the first ``<think>`` and the following ``</think>`` (the whole text if untagged)."""
    return _think_body(text)[0]


def _target_step(line: str, number: int) -> TargetStep:
    m = _TARGET_LINE.match(line)
    if m is None:
        raise MetaCoTParseError(f"bad target line {line!r}; expected '- TARGET [x0, y0, x1, y1] | META-TASK | "
                                "OPERATION' (the box is optional)", number)
    box = None
    if m.group("box") is not None:
        try:
            box = tuple(int(v) for v in m.group("box").split(","))
        except ValueError:
            raise MetaCoTParseError(f"box [{m.group('box')}] must be 4 integers in 0..999", number) from None
    try:
        return TargetStep(m.group("target").strip(), m.group("meta").strip(), m.group("op").strip(), box)
    except MetaCoTParseError as e:
        raise MetaCoTParseError(e.message, number) from None


def parse_metacot(text: str) -> MetaCoT:
    body, first_line = _think_body(text)
    found, lines = {}, {}
    for name, pattern in _FIELD.items():
        m = pattern.search(body)
        if m is None:
            raise MetaCoTParseError(f"missing the line '{pattern.pattern[1:].split(':')[0]}: ...'")
        found[name] = m.group(1).strip()
        lines[{"step1": "meta_tasks"}.get(name, name)] = first_line + body.count("\n", 0, m.start())
    step2 = _STEP2.search(body)
    head, _, summary = found["step1"].partition(".")
    meta_tasks = [m.strip() for m in head.split("+") if m.strip()]
    step3 = body.find(_STEP3)
    if step3 < 0:
        raise MetaCoTParseError(f"missing the line '{_STEP3}'")
    traversal = []
    number = first_line + body.count("\n", 0, step3)
    for line in body[step3 + len(_STEP3):].split("\n")[1:]:
        number += 1
        if line.strip():
            traversal.append(_target_step(line.strip(), number))
    try:
        return MetaCoT(found["task"], found["target"], found["ability"], meta_tasks, summary.strip(),
                       step2.group(1).strip() if step2 else "", traversal)
    except MetaCoTParseError as e:
        raise MetaCoTParseError(e.message, lines.get(e.field)) from None
