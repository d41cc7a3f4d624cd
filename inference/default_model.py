"""The checkpoint used when a command is given no --model-path (the web app; README's first command names it too)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_model_path() -> Path:
    """The tiny reference checkpoint beside the repository (random weights: it shows the pipeline, not good edits)."""
    return REPO_ROOT.parent / "shared" / "reference" / "bagel-tiny"
