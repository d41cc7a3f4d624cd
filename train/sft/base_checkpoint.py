"""Fetch the base checkpoint a run starts from when its config names a ``ckpts/`` folder that is not there yet.

Only the known folders (``ckpts/bagel``, ``ckpts/metacot``; ``modeling/bagel/hub.py``) are fetched; any other
missing ``model.model_dir`` is left to the loader's one-line error. An interrupted download resumes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from modeling.bagel.hub import checkpoint_for_folder, download_checkpoint, is_complete_download
from train.sft.config import SFTConfig


def ensure_base_checkpoint(cfg: SFTConfig, ckpts_dir: Path | None = None) -> Path | None:
    """Downloads ``model.model_dir`` when it is an incomplete known ``ckpts/`` folder; returns it when it did."""
    model_dir = cfg.model.model_dir
    if model_dir is None or is_complete_download(model_dir):
        return None
    known = checkpoint_for_folder(model_dir, ckpts_dir)
    if known is None:
        return None
    print(f"{model_dir} is missing or incomplete: downloading {known.title} ({known.repo_id}) there", file=sys.stderr)
    return download_checkpoint(known.name, model_dir)
