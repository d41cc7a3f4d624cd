"""The reflection verdict: after an edit the model looks at source and result and writes what to do next.

The model is asked ``REFLECTION_PROMPT`` with the result image in context and writes, in this layout::

    <reflect>
    verdict: refine
    reason: the small blue square at [375, 125, 475, 225] is still blue; it should be red.
    refined instruction: Make the small blue square at [375, 125, 475, 225] red.
    </reflect>

- ``success``: the result carries out the instruction and keeps everything else; reflection stops.
- ``refine``: something is missing or wrong; ``refined instruction`` says what still has to change *in the result*
  (the next round edits the result with it, so it names only what is left to do).
- ``failed``: the instruction cannot be carried out on this image (it names something the image does not have);
  reflection stops.

``Reflection.render`` is the training text and ``parse_reflection`` reads it back; anything else raises
``ReflectionParseError`` naming the problem (and the line), which the reflection loop records as ``unparsed``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from data.tagged_text import tagged_span

VERDICTS: tuple[str, ...] = ("success", "refine", "failed")
REFLECT_OPEN, REFLECT_CLOSE = "<reflect>", "</reflect>"
REFLECTION_PROMPT = (
    "Compare the edited image with the image before the edit: does it carry out the instruction and keep "
    "everything else? Answer inside <reflect> </reflect> with 'verdict: success', 'verdict: refine' or "
    "'verdict: failed', then 'reason: ...', and for refine a 'refined instruction: ...' saying what still has to "
    "change in the edited image."
)
_KEYS = ("verdict", "reason", "refined instruction")
_LINE = re.compile(r"^(?P<key>[A-Za-z ]+?)\s*:\s*(?P<value>.*)$")


class ReflectionParseError(ValueError):
    """The text is not a verdict in the layout of ``Reflection.render``."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


@dataclass(frozen=True)
class Reflection:
    verdict: str
    reason: str
    refined_instruction: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ReflectionParseError(f"verdict {self.verdict!r} must be one of {', '.join(VERDICTS)}")
        if not self.reason.strip():
            raise ReflectionParseError("the reason is empty; say why")
        if (self.verdict == "refine") != bool(self.refined_instruction and self.refined_instruction.strip()):
            raise ReflectionParseError("a 'refine' verdict needs a refined instruction, and only it may have one")

    def render(self, with_tags: bool = True) -> str:
        lines = [f"verdict: {self.verdict}", f"reason: {self.reason}"]
        if self.refined_instruction is not None:
            lines.append(f"refined instruction: {self.refined_instruction}")
        body = "\n".join(lines)
        return f"{REFLECT_OPEN}\n{body}\n{REFLECT_CLOSE}" if with_tags else body

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Reflection":
        try:
            return cls(d["verdict"], d["reason"], d.get("refined_instruction"))
        except (KeyError, TypeError, AttributeError) as e:
            raise ReflectionParseError(f"reflection record is missing or has a bad field: {e}") from e


def parse_reflection(text: str) -> Reflection:
    """The verdict in ``text`` (between ``<reflect>`` and ``</reflect>``, or the whole text when untagged)."""
    begin, end = tagged_span(text, REFLECT_OPEN, REFLECT_CLOSE, lambda message, _line: ReflectionParseError(message))
    first_line = text.count("\n", 0, begin) + 1
    found: dict[str, str] = {}
    for offset, line in enumerate(text[begin:end].split("\n")):
        if not line.strip():
            continue
        number = first_line + offset
        m = _LINE.match(line.strip())
        key = m.group("key").lower() if m else None
        if key not in _KEYS:
            expected = ", ".join(f"'{k}: ...'" for k in _KEYS)
            raise ReflectionParseError(f"{line.strip()!r} is not one of the lines {expected}", number)
        if key in found:
            raise ReflectionParseError(f"'{key}' given twice", number)
        found[key] = m.group("value").strip()
    if "verdict" not in found:
        raise ReflectionParseError("missing the line 'verdict: success|refine|failed'")
    if "reason" not in found:
        raise ReflectionParseError("missing the line 'reason: ...'")
    return Reflection(found["verdict"].lower(), found["reason"], found.get("refined instruction"))
