"""Reading scores out of judge replies. Every function raises ``ReplyParseError`` rather than guessing."""

from __future__ import annotations

import json
import math
import re

from inference.benchmark.judges.base import ReplyParseError


def extract_json_object(text: str) -> dict:
    """The first balanced ``{...}`` in the text that parses as a JSON object (code fences and prose are ignored)."""
    start = text.find("{")
    while start >= 0:
        depth, in_string, escaped = 0, False, False
        for end in range(start, len(text)):
            ch = text[end]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
                continue
            if ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        obj = json.loads(text[start:end + 1])
                    except ValueError:
                        break
                    if isinstance(obj, dict):
                        return obj
                    break
        start = text.find("{", start + 1)
    raise ReplyParseError(f"no JSON object in reply {text[:80]!r}")


def _number(value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ReplyParseError(f"score {value!r} is not a number")
    try:
        number = float(value)
    except ValueError as e:
        raise ReplyParseError(f"score {value!r} is not a number") from e
    if not math.isfinite(number) or not low <= number <= high:
        raise ReplyParseError(f"score {number} outside [{low}, {high}]")
    return number


def parse_score_list(text: str, count: int, low: float, high: float, key: str = "score") -> tuple[list[float], str]:
    """``{"score": [a, b, ...], "reasoning": "..."}`` -> ([a, b, ...], reasoning), each score checked in range."""
    obj = extract_json_object(text)
    scores = obj.get(key)
    if not isinstance(scores, list) or len(scores) != count:
        raise ReplyParseError(f"expected '{key}' to be a list of {count} numbers, got {scores!r}")
    reasoning = obj.get("reasoning", "")
    return [_number(s, low, high) for s in scores], reasoning if isinstance(reasoning, str) else str(reasoning)


def parse_single_score(text: str, low: float, high: float, key: str = "score") -> tuple[float, str]:
    """``{"score": n, "reasoning": "..."}`` -> (n, reasoning); a one-element list is accepted too."""
    obj = extract_json_object(text)
    value = obj.get(key)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    reasoning = obj.get("reasoning", "")
    return _number(value, low, high), reasoning if isinstance(reasoning, str) else str(reasoning)


_NAMED_LINE = re.compile(r"^[\s*#>-]*([A-Za-z][A-Za-z &/()'-]*?)[\s*]*:[\s*]*(\d+(?:\.\d+)?)[\s*]*(?:/\s*5)?\s*$")


def parse_named_scores(text: str, count: int, low: float, high: float) -> dict[str, float]:
    """Lines ``Name: N`` (markdown bold tolerated) -> {name: N}; exactly ``count`` such lines are required."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        m = _NAMED_LINE.match(line)
        if m:
            found[m.group(1).strip()] = _number(m.group(2), low, high)
    if len(found) != count:
        raise ReplyParseError(f"expected {count} 'Name: score' lines, found {len(found)}: {list(found)}")
    return found
