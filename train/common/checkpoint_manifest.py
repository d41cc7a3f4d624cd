"""A checkpoint's manifest (``MANIFEST.json``: relative path -> size and checksum), written before its completion
marker and checked before it is loaded, so a truncated, bit-flipped or missing file is found before it breaks a
resume.

Hashing is spread over the ranks: each rank hashes the files it wrote (``__<rank>_*.distcp``, ``rank_<rank>.pt``);
rank 0 hashes the rest (``.metadata``, ``train_state.json``, ``config.yaml``) and merges. Every function here is
collective when a process group of more than one rank is initialized (all ranks call it) and works without one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch.distributed as dist

MANIFEST = "MANIFEST.json"
_RANK_FILE = re.compile(r"^(?:__(\d+)_.*|rank_(\d+)\.pt)$")
BLOCK_BYTES = 64 << 20
_HASH_THREADS = min(8, os.cpu_count() or 1)


def _block_sha256(path: str, index: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(index * BLOCK_BYTES)
        return hashlib.sha256(f.read(BLOCK_BYTES)).digest()


def file_digest(path: str) -> dict[str, Any]:
    """Size and ``sha256_blocks``: the sha256 of the concatenated sha256 digests of the file's 64 MiB blocks.

    Blocks are hashed in threads (hashlib releases the GIL), so a rank's multi-GB shard hashes at several times
    the speed of one core.
    """
    size = os.path.getsize(path)
    blocks = max(1, -(-size // BLOCK_BYTES))
    with ThreadPoolExecutor(min(_HASH_THREADS, blocks)) as pool:
        digests = list(pool.map(lambda i: _block_sha256(path, i), range(blocks)))
    return {"size": size, "sha256_blocks": hashlib.sha256(b"".join(digests)).hexdigest()}


def _all_gather(obj: Any) -> list[Any]:
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def _owner(name: str, world_size: int) -> int:
    """The rank that hashes a file: the rank that wrote it when the name says so, else rank 0."""
    match = _RANK_FILE.match(os.path.basename(name))
    if match:
        rank = int(match.group(1) or match.group(2))
        if rank < world_size:
            return rank
    return 0


def _relative_files(folder: str, exclude: set[str]) -> list[str]:
    found = []
    for root, _, files in os.walk(folder):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), folder)
            if rel not in exclude:
                found.append(rel)
    return sorted(found)


def write_manifest(folder: str, rank: int, world_size: int, exclude: set[str]) -> None:
    """Hashes every file under ``folder`` (but ``exclude``), spread over ranks; rank 0 writes MANIFEST.json."""
    names = _relative_files(folder, exclude | {MANIFEST})
    mine = {n: file_digest(os.path.join(folder, n)) for n in names if _owner(n, world_size) == rank}
    merged: dict[str, Any] = {}
    for part in _all_gather(mine):
        merged.update(part)
    if rank == 0:
        path = os.path.join(folder, MANIFEST)
        with open(path + ".tmp", "w") as f:
            json.dump({"format": 1, "files": dict(sorted(merged.items()))}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)


def read_manifest(folder: str) -> dict[str, dict[str, Any]] | None:
    """The recorded files, or None when the folder has no manifest (written before manifests existed).

    Raises ValueError when the manifest itself is unreadable.
    """
    path = os.path.join(folder, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            files = json.load(f)["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' is not a mapping")
        return files
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{MANIFEST}: unreadable ({e})") from e


def _check_file(folder: str, name: str, want: dict[str, Any]) -> str | None:
    path = os.path.join(folder, name)
    try:
        size = os.path.getsize(path)
        if size != want.get("size"):
            return f"{name}: {size} bytes, {want.get('size')} recorded in {MANIFEST}"
        if file_digest(path)["sha256_blocks"] != want.get("sha256_blocks"):
            return f"{name}: checksum differs from {MANIFEST} (content changed)"
    except FileNotFoundError:
        return f"{name}: missing"
    except OSError as e:
        return f"{name}: unreadable ({e.strerror})"
    return None


def verify_manifest(folder: str, rank: int, world_size: int) -> str | None:
    """None when every file in the manifest has its recorded size and hash; else what is wrong, e.g.
    ``'rank_00000.pt: 100 bytes, 2314 recorded in MANIFEST.json'`` (the same answer on every rank).

    Raises ValueError for a folder without a manifest (see ``read_manifest``).
    """
    try:
        files = read_manifest(folder)
    except ValueError as e:
        problems = [str(e)]
    else:
        if files is None:
            raise ValueError(f"{folder} has no {MANIFEST}")
        problems = [p for name in sorted(files) if _owner(name, world_size) == rank
                    and (p := _check_file(folder, name, files[name])) is not None]
    everyone = sorted(p for part in _all_gather(problems) for p in part)
    if not everyone:
        return None
    return everyone[0] + (f" (and {len(everyone) - 1} more damaged files)" if len(everyone) > 1 else "")
