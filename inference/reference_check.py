"""Run every case of a reference fixture set (format: ../shared/reference/bagel-tiny/README.md) through this code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from modeling.bagel.config import CheckpointError
from modeling.bagel.loader import BagelBundle, load_bagel
from modeling.reference_cases import MODEL_CASES, Check

from .reference_cases import INFERENCE_CASES

ALL_CASES: dict[str, Callable[[BagelBundle, Path], list[Check]]] = {**MODEL_CASES, **INFERENCE_CASES}


@dataclass
class CaseResult:
    name: str
    status: str  # PASS / FAIL / SKIP / ERROR
    checks: list[Check] = field(default_factory=list)
    message: str = ""

    @property
    def worst(self) -> Check | None:
        failing = [c for c in self.checks if not c.passed]
        pool = failing or self.checks
        return max(pool, key=lambda c: c.error / max(c.tolerance, 1e-30)) if pool else None


def check_fixture_set(set_dir: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32) -> list[CaseResult]:
    """Load the set's checkpoint folder with ``load_bagel`` and run each case under ``cases/``."""
    set_dir = Path(set_dir)
    bundle = load_bagel(set_dir, dtype, device)
    results = []
    for case_dir in sorted(p for p in (set_dir / "cases").iterdir() if p.is_dir()):
        runner = ALL_CASES.get(case_dir.name)
        if runner is None:
            results.append(CaseResult(case_dir.name, "SKIP", message="no runner for this case name"))
            continue
        try:
            checks = runner(bundle, case_dir)
        except (ValueError, KeyError, RuntimeError, CheckpointError) as e:
            results.append(CaseResult(case_dir.name, "ERROR", message=f"{type(e).__name__}: {e}"))
            continue
        status = "PASS" if all(c.passed for c in checks) else "FAIL"
        results.append(CaseResult(case_dir.name, status, checks))
    return results
