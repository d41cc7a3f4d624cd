"""The stages of the demo build and the ablation, each skipped when its output exists (re-running resumes).

Everything lives under one run folder::

    RUN/data/<variant>/shapes_edit/{edit_cot,edit,understanding}   training sets (METACOT_DATA_ROOT=RUN/data/<variant>)
    RUN/bench_s<seed>_n<k>/          held-out benchmark (all 21 categories x k samples, its own seed)
    RUN/tokenizer/  RUN/ae/  RUN/init/   world tokenizer, trained autoencoder, initial BAGEL folder
    RUN/demo/{sft,eval}              the demo model: SFT output (export/final) and its evaluation
    RUN/rows/<row>/seed<k>/{sft,eval}   ablation runs
    RUN/jobs.json                    wall seconds and concurrency of every SFT / evaluation job

SFT runs ``python -m train.sft.main`` (what ``scripts/train_sft_edit_single_node.sh`` runs on one GPU; a plain run
is a world of one on a free port, so several runs can share a GPU) and evaluation ``inference/eval_benchmark.py
--bench shapes`` (exact judge); both resume by themselves when restarted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from data.shapes_edit.ablation import VARIANTS, AblationRow, DataVariant
from data.shapes_edit.export import atomic_write_bytes, generate_dataset, write_benchmark
from train.shapes_demo.autoencoder import (AETrainSettings, evaluate_autoencoder, render_batch, save_autoencoder,
                                           set_latent_statistics, train_autoencoder, world_scenes)
from train.shapes_demo.init_folder import ae_args_from_spec, write_init_folder
from train.shapes_demo.tokenizer import train_world_tokenizer

ROOT = Path(__file__).resolve().parents[2]
META_COT_MIX = "data/configs/shapes_demo_meta_cot.yaml"
EDIT_ONLY_MIX = "data/configs/shapes_demo_edit_only.yaml"
CPU_OVERRIDES = ["parallel.param_dtype=float32", "model.vae_dtype=float32"]  # CPUs: no bf16 compute


@dataclass
class DemoSettings:
    run_dir: str = "runs/shapes_demo"
    model_json: str = "configs/shapes_demo/model.json"
    sft_config: str = "configs/sft/shapes_demo.yaml"
    image_size: int = 128
    train_samples: int = 20000       # per training set (the same budget for every ablation row)
    data_seed: int = 0
    bench_seed: int = 1000           # a seed no training set uses: the benchmark is held out
    bench_per_category: int = 8
    vocab_size: int = 1024
    tokenizer_samples: int = 3000
    ae: AETrainSettings = field(default_factory=AETrainSettings)
    steps: int = 2500                # SFT steps of every run
    device: str = "cuda"
    sft_overrides: list[str] = field(default_factory=list)  # extra section.key=value for train.sft.main
    eval_args: list[str] = field(default_factory=lambda: ["--num-timesteps", "25", "--max-think-tokens", "400"])
    eval_dtype: str = "bfloat16"
    data_workers: int = 4

    @property
    def run(self) -> Path:
        return Path(self.run_dir)

    @property
    def bench(self) -> Path:
        return self.run / f"bench_s{self.bench_seed}_n{self.bench_per_category}"


def _log(message: str) -> None:
    print(f"[shapes_demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_data(s: DemoSettings, variant: DataVariant) -> Path:
    """The training set of a variant; returns its data root (for METACOT_DATA_ROOT)."""
    root = s.run / "data" / variant.name
    out = root / "shapes_edit"
    if not (out / "manifest.json").exists():
        manifest = generate_dataset(out, s.train_samples, seed=s.data_seed, size=s.image_size,
                                    shard_size=max(1, min(2000, s.train_samples)), workers=s.data_workers,
                                    categories=variant.categories, drop_task_thinking=variant.drop_task_thinking)
        _log(f"data {variant.name}: {manifest['samples']} samples in {manifest['seconds']} s")
    return root


def ensure_bench(s: DemoSettings) -> Path:
    bench = s.bench
    if not (bench / "samples.jsonl").exists():
        n = write_benchmark(bench, s.bench_per_category, seed=s.bench_seed, size=s.image_size)
        _log(f"benchmark: {n} samples (seed {s.bench_seed})")
    return bench


def ensure_tokenizer(s: DemoSettings) -> Path:
    out = s.run / "tokenizer"
    if not (out / "tokenizer.json").exists():
        tokenizer = train_world_tokenizer(out, s.vocab_size, s.tokenizer_samples, seed=s.data_seed)
        _log(f"tokenizer: {len(tokenizer)} tokens")
    return out


def ensure_autoencoder(s: DemoSettings) -> Path:
    """Train, set the latent statistics, evaluate on held-out scenes and save (``ae_config.json`` written last)."""
    out = s.run / "ae"
    if (out / "ae_config.json").exists():
        return out
    device = torch.device(s.device if s.device != "cuda" or torch.cuda.is_available() else "cpu")
    args = ae_args_from_spec(s.model_json)
    args.resolution = s.image_size
    began = time.perf_counter()
    vae = train_autoencoder(args, s.ae, device, log=_log)
    held_out = world_scenes(s.ae.eval_samples, f"ae-eval/{s.ae.seed}")
    set_latent_statistics(vae, render_batch(held_out, s.image_size).to(device))
    metrics = {**evaluate_autoencoder(vae, held_out, s.image_size), "train_seconds": round(time.perf_counter()
                                                                                         - began, 1),
               "device": str(device), "settings": vars(s.ae)}
    save_autoencoder(vae, out, metrics)
    _log(f"autoencoder: {json.dumps({k: v for k, v in metrics.items() if k != 'settings'})}")
    return out


def ensure_init(s: DemoSettings) -> Path:
    out = s.run / "init"
    if not (out / "ema.safetensors").exists():
        write_init_folder(out, s.model_json, ensure_tokenizer(s), ensure_autoencoder(s), seed=s.data_seed)
        _log(f"initial folder: {out}")
    return out


def prepare(s: DemoSettings, variants: list[DataVariant]) -> None:
    """Every input of the SFT runs: the training sets, the benchmark, tokenizer, autoencoder, initial folder."""
    for variant in variants:
        ensure_data(s, variant)
    ensure_bench(s)
    ensure_init(s)


@dataclass
class Job:
    name: str
    command: list[str]
    env: dict[str, str]
    done: Path          # exists once the job has finished
    log: Path


def sft_job(s: DemoSettings, name: str, out_dir: Path, variant: DataVariant, with_cot: bool, seed: int) -> Job:
    overrides = [f"output_dir={out_dir}", f"model.model_dir={s.run / 'init'}",
                 f"data.mix={ROOT / (META_COT_MIX if with_cot else EDIT_ONLY_MIX)}", f"train.seed={seed}",
                 f"train.total_steps={s.steps}", f"train.device={s.device}", f"logging.run_name={name}",
                 *(CPU_OVERRIDES if s.device == "cpu" else []), *s.sft_overrides]
    env = {"METACOT_DATA_ROOT": str((s.run / "data" / variant.name).resolve())}
    return Job(f"sft {name}", [sys.executable, "-m", "train.sft.main", str(ROOT / s.sft_config), *overrides], env,
               out_dir / "export" / "final" / "ema.safetensors", out_dir / "train.log")


def eval_job(s: DemoSettings, name: str, model_dir: Path, out_dir: Path, think: bool, seed: int) -> Job:
    command = [sys.executable, str(ROOT / "inference" / "eval_benchmark.py"), "--model-path", str(model_dir),
               "--bench", "shapes", "--bench-dir", str(s.bench), "--out", str(out_dir), "--seed", str(seed),
               "--device", s.device, "--dtype", "float32" if s.device == "cpu" else s.eval_dtype, "--no-progress", *(["--think"] if think else []),
               *s.eval_args]
    return Job(f"eval {name}", command, {}, out_dir / "summary.json", out_dir / "eval.log")


def row_jobs(s: DemoSettings, row: AblationRow, seed: int) -> tuple[Job, Job]:
    base = s.run / "rows" / row.name / f"seed{seed}"
    name = f"{row.name}/seed{seed}"
    return (sft_job(s, name, base / "sft", row.data, row.with_cot, seed),
            eval_job(s, name, base / "sft" / "export" / "final", base / "eval", row.with_cot, seed))


def demo_jobs(s: DemoSettings, seed: int = 0) -> tuple[Job, Job]:
    base = s.run / "demo"
    return (sft_job(s, "demo", base / "sft", VARIANTS["all"], True, seed),
            eval_job(s, "demo", base / "sft" / "export" / "final", base / "eval", True, seed))


def _record(s: DemoSettings, job: Job, seconds: float, concurrency: int, returncode: int) -> None:
    path = s.run / "jobs.json"
    records = json.loads(path.read_text()) if path.exists() else {}
    records[job.name] = {"wall_seconds": round(seconds, 1), "concurrency": concurrency, "returncode": returncode,
                         "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_bytes(path, json.dumps(records, indent=1, sort_keys=True).encode())


def run_jobs(s: DemoSettings, jobs: list[Job], concurrency: int) -> list[str]:
    """Run the unfinished jobs, ``concurrency`` at a time (small runs share one GPU); returns the failed ones."""
    pending = [j for j in jobs if not j.done.exists()]
    running: list[tuple[Job, subprocess.Popen, float]] = []
    failed: list[str] = []
    for job in jobs:
        if job.done.exists():
            _log(f"{job.name}: done already")
    while pending or running:
        while pending and len(running) < concurrency:
            job = pending.pop(0)
            job.log.parent.mkdir(parents=True, exist_ok=True)
            with open(job.log, "a") as log:
                process = subprocess.Popen(job.command, cwd=ROOT, env={**os.environ, **job.env}, stdout=log,
                                           stderr=subprocess.STDOUT)
            running.append((job, process, time.perf_counter()))
            _log(f"{job.name}: started (log {job.log})")
        time.sleep(1.0)
        for entry in list(running):
            job, process, began = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            seconds = time.perf_counter() - began
            _record(s, job, seconds, min(concurrency, len(jobs)), process.returncode)
            if process.returncode != 0 or not job.done.exists():
                failed.append(job.name)
                _log(f"{job.name}: FAILED (exit {process.returncode}) after {seconds:.0f} s; see {job.log}")
            else:
                _log(f"{job.name}: finished in {seconds:.0f} s")
    return failed
