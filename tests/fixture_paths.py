"""Where the reference fixture sets lie (../shared/reference beside the repository)."""

from __future__ import annotations

from pathlib import Path

REFERENCE_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
FIXTURE_SETS = sorted(p for p in REFERENCE_ROOT.glob("*") if (p / "cases").is_dir())
TINY = REFERENCE_ROOT / "bagel-tiny"
