"""One evaluation command at a time per run folder: an OS lock (``fcntl.flock``) on ``<run>/.lock``.

The holder writes its pid, host, start time and command line into the lock file, so a second command can say who
holds the folder. The second command waits up to ``timeout_s`` seconds (0: refuses at once) and then refuses with
one line. The OS releases the lock when the holder exits, also after ``kill -9``: a leftover ``.lock`` file never
blocks a run. On network filesystems ``flock`` is only as reliable as the filesystem's locking (NFSv4: yes).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)
LOCK_NAME = ".lock"


class RunFolderBusy(RuntimeError):
    """Another command holds the run folder's lock; the message names it."""


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 65536, 0) or b"{}")
        return (f"pid {info['pid']} on {info['host']} since {info['since']} "
                f"({info['command']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another command"


def _describe_me() -> bytes:
    command = " ".join(sys.argv)
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "command": command if len(command) <= 300 else command[:297] + "..."}).encode()


@contextmanager
def run_folder_lock(root: str | os.PathLike, timeout_s: float = 0.0, poll_s: float = 0.5) -> Iterator[None]:
    """Holds ``<root>/.lock`` for the body; raises ``RunFolderBusy`` after ``timeout_s`` s without it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout_s
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    waited = f" after waiting {timeout_s:g} s" if timeout_s > 0 else ""
                    raise RunFolderBusy(f"run folder {root} is in use by {_holder(fd)}{waited}; let it finish, or "
                                        "pass --lock-timeout SECONDS to wait for it") from None
                if not announced:
                    log.warning("run folder %s is in use by %s; waiting up to %g s for it", root, _holder(fd),
                                timeout_s)
                    announced = True
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, _describe_me(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # the next holder's description starts clean; the file itself stays
    finally:
        os.close(fd)  # releases the lock
