"""Atomic file writes whose result has the permissions of an ordinary ``open(path, "w")``.

A file is written under a temporary name beside its destination and renamed into place, so a crash never leaves a
half-written file that a later run would take for a finished one. ``tempfile.mkstemp`` is not used: it creates the
file with mode 0600, and the rename keeps that mode, so teammates on a shared cluster could not read edits, reports or
exports. Instead the temporary file is created with ``os.open(..., 0o666)``: the kernel applies the process umask
(0o022 -> 0644, 0o002 -> 0664) or the folder's default ACL itself, with no read of the process-global umask (which
``os.umask`` can only read by changing it, racing other threads).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable

_TEMP_TRIES = 100


def temporary_sibling(path: str | os.PathLike) -> tuple[int, str]:
    """A new, empty file ``.NAME.RANDOM.tmp`` in ``path``'s folder, opened for writing: (fd, its path).

    Created exclusively (O_EXCL, like mkstemp) but with mode 0o666 minus the umask, like a plain ``open``."""
    path = Path(path)
    for _ in range(_TEMP_TRIES):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path} after {_TEMP_TRIES} tries")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """``write(tmp_path)`` fills a temporary sibling of ``path``, which then replaces ``path`` (removed on failure)."""
    fd, tmp = temporary_sibling(path)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

