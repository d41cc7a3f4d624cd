"""Degenerate-output check of a reward: do blank, noise, the unedited source or a blurred edit score below real edits?

A reward is only trained on once it ranks every degenerate kind below real edits (the team rule): a policy finds
any degenerate output its reward prefers. Cases come from a benchmark folder: the real edit is the reference target
image (ShapesEdit benchmarks have one) or an evaluation run's image of that sample (``edits_dir``), the CoT the
run's own or the reference's. All requests go to the reward in one batch, exactly as the trainer sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFilter

from data.metacot import MetaCoT
from inference.benchmark.files import read_json
from inference.benchmark.layout import RunLayout
from inference.benchmark.schema import load_benchmark
from train.rl.rewards.base import RewardFunction, RewardRequest, RewardResult

DEGENERATE_KINDS: tuple[str, ...] = ("blank", "noise", "source", "blur")
KINDS: tuple[str, ...] = ("real", *DEGENERATE_KINDS)


@dataclass
class CheckCase:
    sample_id: str
    source: Image.Image
    real_edit: Image.Image
    instruction: str
    cot_text: str | None
    reference: dict | None


def degenerate_edit(kind: str, case: CheckCase, rng: np.random.Generator) -> Image.Image:
    """A degenerate output the size of the real edit: white (where collapsed policies go), uniform noise, the
    unedited source, or the real edit blurred over 1/32 of its short side."""
    size = case.real_edit.size
    if kind == "blank":
        return Image.new("RGB", size, (255, 255, 255))
    if kind == "noise":
        return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    if kind == "source":
        return case.source.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    if kind == "blur":
        return case.real_edit.convert("RGB").filter(ImageFilter.GaussianBlur(max(2.0, min(size) / 32)))
    raise ValueError(f"degenerate kind {kind!r} unknown; choose from {', '.join(DEGENERATE_KINDS)}")


@dataclass
class KindSummary:
    kind: str
    scores: list[float] = field(default_factory=list)
    dropped: int = 0
    at_or_above_real: int = 0  # samples whose score is >= the same sample's real-edit score (both scored)
    paired: int = 0

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.scores)) if self.scores else None


@dataclass
class RewardCheck:
    reward: str
    summaries: dict[str, KindSummary]
    margin: float = 0.0  # a degenerate kind must score at least this much below the real edits

    @property
    def flagged(self) -> list[str]:
        """Degenerate kinds whose mean score reaches the real edits' mean (less the margin)."""
        real = self.summaries["real"].mean
        return [k for k in DEGENERATE_KINDS if real is not None and self.summaries[k].mean is not None
                and self.summaries[k].mean >= real - self.margin]

    @property
    def passes(self) -> bool:
        return self.summaries["real"].mean is not None and not self.flagged

    def table(self) -> str:
        real = self.summaries["real"].mean
        lines = [f"reward {self.reward}: mean score per kind (real = the reference/model edit)",
                 f"{'kind':<8} {'scored':>6} {'dropped':>7} {'mean':>7} {'>=real':>7}  verdict"]
        for kind in KINDS:
            s = self.summaries[kind]
            mean = "-" if s.mean is None else f"{s.mean:.3f}"
            share = "" if kind == "real" or not s.paired else f"{s.at_or_above_real}/{s.paired}"
            verdict = "" if kind == "real" else ("FLAGGED" if kind in self.flagged else
                                                 "ok" if s.mean is not None and real is not None else "no scores")
            lines.append(f"{kind:<8} {len(s.scores):>6} {s.dropped:>7} {mean:>7} {share:>7}  {verdict}")
        if real is None:
            lines.append("FAIL: no real edit was scored, so nothing can be compared")
        elif self.flagged:
            lines.append(f"FAIL: {', '.join(self.flagged)} score(s) within {self.margin:g} of the real edits or "
                         "above; do not train on this reward until it ranks them lower")
        else:
            lines.append(f"PASS: every degenerate kind scores more than {self.margin:g} below the real edits")
        return "\n".join(lines)


def check_reward(reward: RewardFunction, cases: Sequence[CheckCase], seed: int = 0,
                 margin: float = 0.0) -> RewardCheck:
    rng = np.random.default_rng(seed)
    requests, keys = [], []
    for case in cases:
        for kind in KINDS:
            edited = case.real_edit.convert("RGB") if kind == "real" else degenerate_edit(kind, case, rng)
            requests.append(RewardRequest(f"{case.sample_id}/{kind}", case.source, edited, case.instruction,
                                          case.cot_text, case.reference))
            keys.append((case.sample_id, kind))
    results: list[RewardResult] = reward(requests)
    if len(results) != len(requests):
        raise RuntimeError(f"reward {reward.name!r} returned {len(results)} results for {len(requests)} requests")
    by_key = dict(zip(keys, results))
    summaries = {kind: KindSummary(kind) for kind in KINDS}
    for (sample_id, kind), result in by_key.items():
        summary = summaries[kind]
        if result.score is None:
            summary.dropped += 1
            continue
        summary.scores.append(result.score)
        real = by_key[(sample_id, "real")].score
        if kind != "real" and real is not None:
            summary.paired += 1
            summary.at_or_above_real += result.score >= real
    return RewardCheck(reward.name, summaries, margin)


def load_cases(bench_dir: str | Path, edits_dir: str | Path | None = None, limit: int | None = None,
               ) -> tuple[list[CheckCase], list[str]]:
    """(cases, skipped reasons): the real edit is the run's image when ``edits_dir`` is given, else the
    reference target image; the CoT is the run's ``cot_text``, else the reference Meta-CoT rendered."""
    bench = load_benchmark(bench_dir)
    layout = RunLayout(Path(edits_dir)) if edits_dir is not None else None
    cases, skipped = [], []
    for sample in bench.samples:
        if limit is not None and len(cases) >= limit:
            break
        gen = (read_json(layout.gen_record(sample.id)) or {}) if layout is not None else {}
        if layout is not None:
            edit_path = layout.image(sample.id)
        elif "target_image" in sample.reference:
            edit_path = bench.bench_dir / sample.reference["target_image"]
        else:
            raise ValueError(f"sample {sample.id} has no reference target image; pass an evaluation run folder "
                             "(--edits RUN_DIR) whose images are the real edits")
        if not edit_path.is_file():
            skipped.append(f"{sample.id}: {edit_path} not found")
            continue
        with Image.open(edit_path) as im:
            edit = im.convert("RGB")
        cot = gen.get("cot_text")
        if cot is None and isinstance(sample.reference.get("cot"), dict):
            cot = MetaCoT.from_dict(sample.reference["cot"]).render()
        cases.append(CheckCase(sample.id, bench.open_source(sample), edit, sample.instruction, cot,
                               sample.reference or None))
    return cases, skipped
