"""Streams decoded text piece by piece while tokens are generated (for ``on_text`` callbacks: a web app, a console).

Every step re-decodes the ids so far and sends only what was added, so the pieces always join to the final text. A
piece is held back while the text ends in an incomplete UTF-8 character (byte-level BPE splits characters across
tokens and the decoder shows the missing bytes as U+FFFD) or does not extend what was already sent.
"""

from __future__ import annotations

from typing import Callable

TextCallback = Callable[[str], None]


class TextStream:
    def __init__(self, decode: Callable[[list[int]], str], on_text: TextCallback):
        self.decode, self.on_text = decode, on_text
        self.sent = ""

    def update(self, ids: list[int]) -> None:
        """Called after every generated token with all ids so far."""
        text = self.decode(ids)
        if not text.endswith("\ufffd") and text.startswith(self.sent):
            self._send(text)

    def finish(self, text: str) -> None:
        """Sends what is left of the final text (a trailing incomplete character stays U+FFFD, as in the text)."""
        if not text.startswith(self.sent):
            raise RuntimeError(f"streamed text {self.sent!r} is not a prefix of the final text {text!r}")
        self._send(text)

    def _send(self, text: str) -> None:
        piece = text[len(self.sent):]
        if piece:
            self.sent = text
            self.on_text(piece)
