"""On-disk cache of raw judge replies, keyed by a hash of everything that determines the reply.

The key covers the judge's identity and generation parameters, the system text, every text part, every image's
pixels, and the attempt number (a re-ask after an unparsable reply is its own entry), so a re-run replays the same
replies in the same order without contacting the judge. One small JSON file per entry, written atomically, so
concurrent threads and processes can share a cache folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from PIL import Image

from inference.benchmark.files import atomic_write_json, read_json


def image_digest(image: Image.Image) -> str:
    """Hash of the pixels (not of an encoding, which may differ across Pillow versions)."""
    h = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def request_key(judge_fingerprint: dict, system: str | None, parts: Sequence[str | Image.Image],
                attempt: int) -> str:
    described = [p if isinstance(p, str) else {"image": image_digest(p)} for p in parts]
    payload = json.dumps({"judge": judge_fingerprint, "system": system, "parts": described, "attempt": attempt},
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ReplyCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        entry = read_json(self._path(key))
        return entry.get("reply") if isinstance(entry, dict) else None

    def put(self, key: str, reply: str) -> None:
        atomic_write_json(self._path(key), {"reply": reply})
