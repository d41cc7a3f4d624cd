"""What each supported benchmark scores with, and how its official overall number is aggregated.

Aggregation follows each benchmark's own scripts (see docs/benchmarks_notes.md): GEdit's ``calculate_statistics.py``
averages the per-category means (macro); BAGEL's ImgEdit summary averages all samples (micro). The 21-Tasks-Bench
protocol is not public; the paper reports "overall across 21 editing tasks", read here as macro. Reports always
show both macro and micro; ``official`` names the one used for the headline. A benchmark with a fixed category
list (21-Tasks-Bench) is checked against it and reported in its order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inference.benchmark.tasks21_categories import CATEGORY_NAMES as TASKS21_CATEGORIES

AGGREGATIONS: tuple[str, ...] = ("macro", "micro")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BenchSpec:
    name: str
    chat_scorer: str  # scorer used with a chat judge (openai / qwen_local)
    official: str  # "macro" or "micro"
    description: str
    default_dir: str  # relative to the repository, where the download / generation scripts put it
    fetch: str  # the command that makes default_dir
    categories: tuple[str, ...] = ()  # the fixed category list in report order (empty: whatever the folder holds)

    def default_path(self) -> Path:
        return REPO_ROOT / self.default_dir


BENCHMARKS: dict[str, BenchSpec] = {
    "21tasks": BenchSpec("21tasks", "viescore", "macro", "Meta-CoT 21-Tasks-Bench, VIEScore overall (0-10)",
                         "data/bench/21tasks", "bash scripts/download_bench.sh 21tasks", TASKS21_CATEGORIES),
    "gedit": BenchSpec("gedit", "viescore", "macro", "GEdit-Bench (one language per folder), VIEScore (0-10)",
                       "data/bench/gedit_en", "bash scripts/download_bench.sh gedit"),
    "imgedit": BenchSpec("imgedit", "imgedit", "micro", "ImgEdit basic, per-edit-type judge prompts (1-5)",
                         "data/bench/imgedit", "bash scripts/download_bench.sh imgedit"),
    "shapes": BenchSpec("shapes", "viescore", "micro", "ShapesEdit, exact scene judge (0-10)",
                        "datasets/shapes_edit_bench", "python -m scripts.shapes_edit.generate --out "
                        "datasets/shapes_edit --bench-dir datasets/shapes_edit_bench"),
}


def bench_spec(name: str) -> BenchSpec:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]
