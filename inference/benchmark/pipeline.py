"""The evaluation pipeline behind ``inference/eval_benchmark.py``: generate -> score -> report, each resumable.

``run_evaluation`` runs the stages asked for. Generation runs on every rank (strided shards); scoring and the report
run on rank 0 only, after ``barrier`` (torch.distributed under torchrun). The editor is built only when some sample
of this rank still needs generating, so a resumed or score-only run never loads the model. ``config.json`` records
the generation settings; resuming into a folder made with other settings is refused rather than mixed.

One command at a time per run folder: rank 0 holds the folder's lock (``run_lock.py``) for the whole run, and a
second command waits up to ``lock_timeout_s`` and then refuses, so no sample is judged (and paid for) twice. Rank 0
shares the outcome of locking and the config check with the other ranks (``broadcast``), so they stop too instead
of waiting at a barrier.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from inference.benchmark.benchmarks import BenchSpec, bench_spec
from inference.benchmark.editor import DEFAULT_FACTORY, Editor, build_editor
from inference.benchmark.files import atomic_write_json, read_json, update_json
from inference.benchmark.generate import GenOutcome, GenSettings, is_generated, run_generation, shard
from inference.benchmark.grid import write_grids
from inference.benchmark.judges import JudgeSettings, build_judge
from inference.benchmark.layout import RunLayout
from inference.benchmark.report import write_report
from inference.benchmark.run_lock import RunFolderBusy, run_folder_lock
from inference.benchmark.schema import LoadedBenchmark, load_benchmark
from inference.benchmark.score import ScoreOutcome, run_scoring
from inference.benchmark.tasks21_categories import check_categories
from inference.benchmark.scorers import build_scorer

log = logging.getLogger(__name__)
STAGES: tuple[str, ...] = ("generate", "score", "report")


class RunConfigMismatch(ValueError):
    """The output folder holds results made with other generation settings."""


@dataclass
class EvalConfig:
    bench: str
    bench_dir: str
    out: str
    model_path: str | None = None
    stages: tuple[str, ...] = STAGES
    generation: GenSettings = field(default_factory=GenSettings)
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    scorers: tuple[str, ...] = ()  # default: the benchmark's scorer for the chosen judge
    editor_factory: str = DEFAULT_FACTORY
    device: str = "cpu"
    dtype: str = "bfloat16"
    grid_per_category: int = 6
    show_progress: bool = True
    allow_extra_categories: bool = False  # a bench with a fixed category list may hold others too
    lock_timeout_s: float = 0.0  # how long to wait for another command holding the run folder (0: refuse at once)

    def resolved_scorers(self) -> tuple[str, ...]:
        if self.scorers:
            return self.scorers
        return ("exact",) if self.judge.backend == "exact" else (bench_spec(self.bench).chat_scorer,)


@dataclass
class EvalResult:
    generation: GenOutcome | None = None
    scoring: dict[str, ScoreOutcome] = field(default_factory=dict)
    headline: dict[str, float | None] = field(default_factory=dict)

    def judge_failures(self) -> tuple[int, int]:
        """(items whose judging failed after retries, items judged or already done) over all scorers, rank 0."""
        failed = sum(len(o.failed) for o in self.scoring.values())
        return failed, sum(len(o.scored) + len(o.already_done) for o in self.scoring.values())


def _generation_identity(cfg: EvalConfig) -> dict:
    return {"bench": cfg.bench, "bench_dir": str(Path(cfg.bench_dir).resolve()), "model_path": cfg.model_path,
            "generation": cfg.generation.to_dict()}


def check_run_config(layout: RunLayout, cfg: EvalConfig) -> dict:
    """The stored run config, created on first use; raises RunConfigMismatch when generation settings differ."""
    identity = _generation_identity(cfg)
    stored = read_json(layout.config)
    if stored is None:
        stored = {**identity, "judges": {}}
        atomic_write_json(layout.config, stored)
        return stored
    differing = [k for k in identity if k != "model_path" and stored.get(k) != identity[k]]
    if cfg.model_path is not None and stored.get("model_path") not in (None, cfg.model_path):
        differing.append("model_path")
    if differing:
        raise RunConfigMismatch(f"{layout.root} was made with other {', '.join(differing)} "
                                f"(stored: {[stored.get(k) for k in differing]}); use a new --out folder")
    if stored.get("model_path") is None and cfg.model_path is not None:
        stored["model_path"] = cfg.model_path
        atomic_write_json(layout.config, stored)
    return stored


def run_evaluation(cfg: EvalConfig, rank: int = 0, world_size: int = 1, editor: Editor | None = None,
                   barrier: Callable[[], None] | None = None,
                   broadcast: Callable[[Any], Any] | None = None) -> EvalResult:
    """``barrier`` and ``broadcast`` (rank 0's value on every rank) are needed when ``world_size > 1``."""
    unknown = set(cfg.stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; choose from {', '.join(STAGES)}")
    spec = bench_spec(cfg.bench)
    bench = load_benchmark(cfg.bench_dir)
    if bench.skipped:
        log.warning("%d benchmark lines skipped: %s", len(bench.skipped), bench.skipped[:5])
    if spec.categories:
        check_categories({s.category for s in bench.samples}, spec.categories, cfg.allow_extra_categories)
    layout = RunLayout(Path(cfg.out))
    if "generate" in cfg.stages and editor is None and not cfg.model_path:  # checked before the run folder exists
        missing = sum(not is_generated(layout, s.id) for s in shard(bench.samples, rank, world_size))
        if missing:
            raise ValueError(f"{missing} samples still need generating and no model is given; pass --model-path DIR "
                             "or download one with `bash scripts/download_ckpt.sh`")
    layout.root.mkdir(parents=True, exist_ok=True)
    with ExitStack() as held:
        refusal: Exception | None = None
        if rank == 0:
            try:
                held.enter_context(run_folder_lock(layout.root, cfg.lock_timeout_s))
                check_run_config(layout, cfg)
            except (RunFolderBusy, RunConfigMismatch) as e:
                refusal = e
        if broadcast is not None:
            refusal = broadcast(refusal)
        if refusal is not None:
            raise refusal
        return _run_stages(cfg, spec, bench, layout, rank, world_size, editor, barrier)


def _record_judge(layout: RunLayout, scorer_name: str, judge_model: str) -> None:
    """Adds one scorer's judge to config.json's record, keeping every other scorer's entry."""
    update_json(layout.config, lambda stored: stored.setdefault("judges", {}).update({scorer_name: judge_model}))


def _run_stages(cfg: EvalConfig, spec: BenchSpec, bench: LoadedBenchmark, layout: RunLayout, rank: int,
                world_size: int, editor: Editor | None, barrier: Callable[[], None] | None) -> EvalResult:
    result = EvalResult()
    if "generate" in cfg.stages:
        if barrier is not None:
            barrier()  # rank 0 has checked/created config.json before anyone writes images
        pending = [s for s in shard(bench.samples, rank, world_size) if not is_generated(layout, s.id)]
        if pending and editor is None:
            editor = build_editor(cfg.model_path, cfg.device, cfg.dtype, cfg.editor_factory)
        result.generation = run_generation(editor, bench, layout, cfg.generation, rank, world_size,
                                           cfg.show_progress) if pending else GenOutcome(
            already_done=[s.id for s in shard(bench.samples, rank, world_size)])
        if barrier is not None:
            barrier()
    if rank != 0:
        return result
    scorer_names = cfg.resolved_scorers()
    if "score" in cfg.stages:
        judge = build_judge(cfg.judge, layout.judge_cache)
        for name in scorer_names:
            scorer = build_scorer(name, judge, bench.judge_prompts)
            result.scoring[name] = run_scoring(bench, layout, scorer, cfg.judge.concurrency, cfg.show_progress)
            _record_judge(layout, name, scorer.judge_model)
    if "report" in cfg.stages:
        report_config = {**read_json(layout.config), "judge_settings": asdict(cfg.judge)}
        aggregates = write_report(bench, layout, spec, scorer_names, report_config)
        write_grids(bench, layout, scorer_names[0], cfg.grid_per_category)
        result.headline = {a.scorer: getattr(a, spec.official).get("overall") for a in aggregates}
    return result
