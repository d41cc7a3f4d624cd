"""What each supported benchmark scores with, and how its official overall number is aggregated.

Aggregation follows each benchmark's own scripts (see docs/benchmarks_notes.md): GEdit's ``calculate_statistics.py``
averages the per-category means (macro); BAGEL's ImgEdit summary averages all samples (micro). The 21-Tasks-Bench
protocol is not public; the paper reports "overall across 21 editing tasks", read here as macro. Reports always
show both macro and micro; ``official`` names the one used for the headline.
"""

from __future__ import annotations

from dataclasses import dataclass

AGGREGATIONS: tuple[str, ...] = ("macro", "micro")


@dataclass(frozen=True)
class BenchSpec:
    name: str
    chat_scorer: str  # scorer used with a chat judge (openai / qwen_local)
    official: str  # "macro" or "micro"
    description: str


BENCHMARKS: dict[str, BenchSpec] = {
    "21tasks": BenchSpec("21tasks", "viescore", "macro", "Meta-CoT 21-Tasks-Bench, VIEScore overall (0-10)"),
    "gedit": BenchSpec("gedit", "viescore", "macro", "GEdit-Bench (one language per folder), VIEScore (0-10)"),
    "imgedit": BenchSpec("imgedit", "imgedit", "micro", "ImgEdit basic, per-edit-type judge prompts (1-5)"),
    "shapes": BenchSpec("shapes", "viescore", "micro", "ShapesEdit, exact scene judge (0-10)"),
}


def bench_spec(name: str) -> BenchSpec:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]
