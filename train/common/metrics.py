"""Run monitoring on rank 0: a progress bar, a line per log step, TensorBoard when installed, W&B when asked."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm

from data.atomic_write import atomic_write


def drop_rows_after(jsonl_path: str, step: int) -> int:
    """Rewrite ``jsonl_path`` (atomically) without its rows logged after ``step`` or cut off by a crash; returns how
    many rows were dropped."""
    if not os.path.isfile(jsonl_path):
        return 0
    with open(jsonl_path) as f:
        lines = [line for line in f if line.strip()]
    kept = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:  # a line half-written when the run was killed
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            kept.append(line if line.endswith("\n") else line + "\n")
    if len(kept) < len(lines):
        atomic_write(jsonl_path, lambda tmp: Path(tmp).write_text("".join(kept)))
    return len(lines) - len(kept)


class MetricsLogger:
    """Writes scalars from rank 0; other ranks get a logger that does nothing, so call sites need no rank checks.

    Every logged row is also appended to ``<log_dir>/metrics.jsonl`` (machine-readable, always available). A run
    that starts at ``start_step`` (a resume, or a fresh run in an old folder) first drops the rows and TensorBoard
    events after that step, which the crashed run logged past its last checkpoint, so no step is logged twice.
    """

    def __init__(self, *, enabled: bool, log_dir: str, total_steps: int, start_step: int, tensorboard: bool,
                 wandb_project: str | None, run_name: str, config: dict[str, Any]) -> None:
        self.enabled = enabled
        self._bar = None
        self._tb = None
        self._wandb = None
        if not enabled:
            return
        os.makedirs(log_dir, exist_ok=True)
        self._jsonl_path = os.path.join(log_dir, "metrics.jsonl")
        dropped = drop_rows_after(self._jsonl_path, start_step)
        if dropped:
            tqdm.write(f"[metrics] dropped {dropped} row(s) of metrics.jsonl logged after step {start_step}, which "
                       "this run logs again")
        self._bar = tqdm(total=total_steps, initial=start_step, dynamic_ncols=True, desc="train",
                         disable=None)  # no bar when stderr is not a terminal (log files stay readable)
        if tensorboard:
            if importlib.util.find_spec("tensorboard") is None:
                tqdm.write("[metrics] tensorboard is not installed (pip install tensorboard); logging to "
                           "metrics.jsonl only")
            else:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(log_dir=os.path.join(log_dir, "tensorboard"), purge_step=start_step + 1)
        if wandb_project:
            import wandb  # optional dependency: only imported when a project is configured
            self._wandb = wandb.init(project=wandb_project, name=run_name, config=config, resume="allow")

    def step(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self._jsonl_path, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        shown = {k: scalars[k] for k in ("loss", "ce", "mse", "grad_norm", "lr", "tokens_per_s", "mfu")
                 if k in scalars}
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
        tqdm.write(f"step {step}: " + " ".join(f"{k}={v:.5g}" for k, v in scalars.items()))
        if self._tb is not None:
            for key, value in scalars.items():
                self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def log_image(self, step: int, tag: str, image: Any) -> None:
        """A PIL image to TensorBoard / W&B (files on disk are the caller's)."""
        if self._tb is not None:
            import numpy as np
            self._tb.add_image(tag, np.asarray(image.convert("RGB")), step, dataformats="HWC")
        if self._wandb is not None:
            import wandb
            self._wandb.log({tag: wandb.Image(image)}, step=step)

    def message(self, text: str) -> None:
        if self.enabled:
            tqdm.write(text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
