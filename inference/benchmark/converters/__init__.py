"""Converters from public benchmark releases (already downloaded) to the common benchmark folder format.

They read local files only; ``scripts/download_bench.sh`` fetches the data with huggingface_hub and calls them.
Rows that cannot be converted (missing image, undecodable bytes, empty instruction) are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ConvertStats:
    written: int = 0
    skipped: list[str] = field(default_factory=list)  # "row/key: reason"

    def summary(self, name: str) -> str:
        head = f"{name}: {self.written} samples written, {len(self.skipped)} skipped"
        return head + (f" (first: {self.skipped[:3]})" if self.skipped else "")
