"""Atomic file writes and tolerant JSONL reading, shared by every stage of the benchmark pipeline.

Every output is written to a temporary file in the same folder and moved into place with ``os.replace``, so an
interrupted run never leaves a half-written image or record that a resumed run would mistake for a finished one.
Shared records (``config.json``) are updated by read-merge-write (``update_json``) under the run folder's lock.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from PIL import Image

from data.atomic_write import temporary_sibling


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes a temporary file beside ``path`` and renames it into place; the file gets the permissions any new file
    gets (0o666 less the umask), not the owner-only ones of ``tempfile.mkstemp``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_sibling(path)  # not mkstemp: its 0600 would hide results from the team
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def update_json(path: str | os.PathLike, change: Callable[[dict], None]) -> dict:
    """Read-merge-write of a JSON object file: re-reads the newest content, applies ``change`` in place and writes
    it back atomically, so keys other writers added are kept. Callers hold the run folder's lock
    (``inference/benchmark/run_lock.py``), which orders the writers."""
    current = read_json(path)
    current = current if isinstance(current, dict) else {}
    change(current)
    atomic_write_json(path, current)
    return current


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def atomic_write_png(path: str | os.PathLike, image: Image.Image) -> None:
    atomic_write_bytes(path, png_bytes(image))


def read_json(path: str | os.PathLike) -> Any | None:
    """The parsed JSON file, or None when it is missing or corrupt (callers treat both as 'not done')."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict], list[int]]:
    """Rows of a JSONL file and the 1-based numbers of lines that were not a JSON object (skipped)."""
    rows, bad = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                bad.append(number)
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                bad.append(number)
    return rows, bad
