"""Where a model's tagged block (``<think> ... </think>``, ``<reflect> ... </reflect>``) lies in a text."""

from __future__ import annotations

from typing import Callable


def tagged_span(text: str, open_tag: str, close_tag: str,
                error: Callable[[str, int], Exception]) -> tuple[int, int]:
    """Offsets (begin, end) of what lies between ``open_tag`` and the following ``close_tag``; the whole text when
    ``open_tag`` is absent. An unclosed tag raises ``error(message, line of the open tag)``."""
    begin, end = 0, len(text)
    start = text.find(open_tag)
    if start >= 0:
        begin = start + len(open_tag)
        end = text.find(close_tag, begin)
        if end < 0:
            raise error(f"'{open_tag}' is never closed by '{close_tag}'", text.count("\n", 0, start) + 1)
    return begin, end
