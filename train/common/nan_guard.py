"""Skip optimizer steps whose loss or gradient norm is NaN/inf; stop after too many in a row."""

from __future__ import annotations

import math
from dataclasses import dataclass


class TrainingDiverged(RuntimeError):
    """Raised after ``max_consecutive`` non-finite steps in a row (a checkpoint is written first)."""


@dataclass
class NanGuard:
    max_consecutive: int
    skipped_total: int = 0
    consecutive: int = 0

    def check(self, loss: float, grad_norm: float) -> bool:
        """True when the step is finite and may be applied; otherwise count it (caller skips the update)."""
        if math.isfinite(loss) and math.isfinite(grad_norm):
            self.consecutive = 0
            return True
        self.skipped_total += 1
        self.consecutive += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.consecutive >= self.max_consecutive

    def stop_message(self, step: int) -> str:
        return (f"training stopped at step {step}: {self.consecutive} consecutive steps had a non-finite loss or "
                f"gradient norm ({self.skipped_total} skipped in total). A checkpoint was saved; lower optim.lr, "
                f"check the data for broken samples, or raise train.max_consecutive_bad_steps to continue.")

    def state_dict(self) -> dict[str, int]:
        return {"skipped_total": self.skipped_total, "consecutive": self.consecutive}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.skipped_total = int(state["skipped_total"])
        self.consecutive = int(state["consecutive"])
