"""Command-line flags shared by the demo build and the ablation drivers (all DemoSettings fields)."""

from __future__ import annotations

import argparse
from pathlib import Path

from train.shapes_demo.autoencoder import AETrainSettings
from train.shapes_demo.pipeline import DemoSettings


def add_settings_flags(p: argparse.ArgumentParser, steps: int) -> None:
    d, ae = DemoSettings(), AETrainSettings()
    p.add_argument("--run-dir", default=d.run_dir, help="everything is written (and resumed) under this folder")
    p.add_argument("--steps", type=int, default=steps, help="SFT steps of every run")
    p.add_argument("--train-samples", type=int, default=d.train_samples, help="edit samples per training set")
    p.add_argument("--bench-per-category", type=int, default=d.bench_per_category)
    p.add_argument("--bench-seed", type=int, default=d.bench_seed, help="held-out benchmark seed")
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--vocab-size", type=int, default=d.vocab_size)
    p.add_argument("--model-json", default=d.model_json)
    p.add_argument("--sft-config", default=d.sft_config)
    p.add_argument("--device", default=d.device, choices=("cuda", "cpu"))
    p.add_argument("--ae-steps", type=int, default=ae.steps)
    p.add_argument("--ae-batch-size", type=int, default=ae.batch_size)
    p.add_argument("--ae-train-samples", type=int, default=ae.train_samples)
    p.add_argument("--ae-eval-samples", type=int, default=ae.eval_samples)
    p.add_argument("--tokenizer-samples", type=int, default=d.tokenizer_samples)
    p.add_argument("--data-workers", type=int, default=d.data_workers, help="processes generating the data")
    p.add_argument("--sft-override", action="append", default=[], metavar="KEY=VALUE",
                   help="extra train.sft.main override, e.g. optim.lr=1e-3 (repeatable)")
    p.add_argument("--eval-args", default=" ".join(d.eval_args),
                   help="extra inference/eval_benchmark.py flags (one string)")


def settings_from_args(args: argparse.Namespace) -> DemoSettings:
    ae = AETrainSettings(size=args.image_size, steps=args.ae_steps, batch_size=args.ae_batch_size,
                         train_samples=args.ae_train_samples, eval_samples=args.ae_eval_samples)
    return DemoSettings(run_dir=args.run_dir, model_json=args.model_json, sft_config=args.sft_config,
                        image_size=args.image_size, train_samples=args.train_samples,
                        bench_seed=args.bench_seed, bench_per_category=args.bench_per_category,
                        vocab_size=args.vocab_size, tokenizer_samples=args.tokenizer_samples, ae=ae, steps=args.steps, device=args.device,
                        sft_overrides=list(args.sft_override), eval_args=args.eval_args.split(),
                        data_workers=args.data_workers)


def check_paths(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stop before any work when an input file is missing."""
    for flag, path in (("--model-json", args.model_json), ("--sft-config", args.sft_config)):
        if not Path(path).is_file():
            p.error(f"{flag} {path} is not a file; pass an existing one (defaults are relative to the repository root)")
