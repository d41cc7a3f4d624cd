"""Evaluate an editing model on a benchmark: generate -> score -> report, each stage resumable.

    python inference/eval_benchmark.py --model-path DIR --bench 21tasks|imgedit|gedit|shapes --bench-dir DIR \
        --out runs/eval/NAME [--think] [--judge openai|qwen_local|exact] [inference knobs]

Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK set) generation is sharded over ranks, each on its own GPU; rank 0
then scores and writes the report. See scripts/eval_benchmark.sh.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.benchmark.benchmarks import BENCHMARKS  # noqa: E402
from inference.benchmark.editor import DEFAULT_FACTORY  # noqa: E402
from inference.benchmark.generate import GenSettings  # noqa: E402
from inference.benchmark.judges import JUDGE_BACKENDS, JudgeSettings, OpenAIChatConfig  # noqa: E402
from inference.benchmark.pipeline import STAGES, EvalConfig, run_evaluation  # noqa: E402
from inference.benchmark.run_lock import RunFolderBusy  # noqa: E402
from inference.benchmark.scorers import SCORER_NAMES  # noqa: E402

# CLI flag -> keyword passed to editor.edit(); None values are not passed (the editor's defaults apply).
KNOBS: dict[str, tuple[str, Any]] = {
    "cfg_text_scale": ("--cfg-text-scale", float),
    "cfg_img_scale": ("--cfg-img-scale", float),
    "cfg_interval": ("--cfg-interval", float),
    "timestep_shift": ("--timestep-shift", float),
    "num_timesteps": ("--num-timesteps", int),
    "cfg_renorm_min": ("--cfg-renorm-min", float),
    "cfg_renorm_type": ("--cfg-renorm-type", str),
    "max_think_token_n": ("--max-think-tokens", int),
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-path", default=None, help="checkpoint folder (not needed when all images exist)")
    p.add_argument("--bench", required=True, choices=sorted(BENCHMARKS))
    p.add_argument("--bench-dir", required=True, help="benchmark folder with samples.jsonl")
    p.add_argument("--out", required=True, help="run folder, e.g. runs/eval/NAME")
    p.add_argument("--stages", default=",".join(STAGES), help="comma list of generate,score,report")
    g = p.add_argument_group("generation")
    g.add_argument("--think", action="store_true", help="let the model write its CoT before editing")
    g.add_argument("--seed", type=int, default=0, help="base seed; each sample's seed derives from it and its id")
    for dest, (flag, kind) in KNOBS.items():
        nargs = 2 if dest == "cfg_interval" else None
        g.add_argument(flag, dest=dest, type=kind, nargs=nargs, default=None)
    g.add_argument("--hyper", action="append", default=[], metavar="KEY=JSON",
                   help="any other editor keyword, value parsed as JSON (repeatable)")
    g.add_argument("--device", default=None, help="default: cuda:LOCAL_RANK when CUDA is available, else cpu")
    g.add_argument("--dtype", default="bfloat16")
    g.add_argument("--editor-factory", default=DEFAULT_FACTORY, help="module:function building the editor")
    j = p.add_argument_group("judge")
    j.add_argument("--judge", default=None, choices=JUDGE_BACKENDS,
                   help="default: exact for shapes, openai otherwise")
    j.add_argument("--scorers", default="", help=f"comma list from {', '.join(SCORER_NAMES)} (default per bench)")
    j.add_argument("--judge-model", default=None, help="chat model name, or Qwen2.5-VL folder for qwen_local")
    j.add_argument("--judge-base-url", default=os.environ.get("JUDGE_BASE_URL", "https://api.openai.com/v1"))
    j.add_argument("--judge-api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    j.add_argument("--judge-auth-header", default="bearer", choices=("bearer", "api-key"))
    j.add_argument("--judge-concurrency", type=int, default=8)
    j.add_argument("--judge-timeout", type=float, default=120.0)
    j.add_argument("--judge-retries", type=int, default=5, help="transport retries (timeouts, 429, 5xx)")
    j.add_argument("--judge-backoff", type=float, default=2.0, help="first retry delay in s (doubles each retry)")
    j.add_argument("--judge-parse-retries", type=int, default=2, help="re-asks after an unparsable reply")
    j.add_argument("--judge-max-tokens", type=int, default=1400)
    j.add_argument("--judge-device", default="cuda", help="qwen_local only")
    j.add_argument("--judge-dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"),
                   help="qwen_local only")
    j.add_argument("--no-judge-cache", action="store_true")
    p.add_argument("--grid-per-category", type=int, default=6)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
                   help="when another command is using --out: wait up to this long for it (default: 0, refuse at once)")
    p.add_argument("--fail-on-judge-errors", action="store_true",
                   help="exit 1 when some items still failed judging after retries (default: exit 0, with a last "
                        "line saying how many)")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace, local_rank: int) -> EvalConfig:
    hyper = {dest: getattr(args, dest) for dest in KNOBS if getattr(args, dest) is not None}
    for item in args.hyper:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--hyper {item!r} must look like KEY=JSON_VALUE, e.g. cfg_text_scale=4.0")
        try:
            hyper[key] = json.loads(value)
        except ValueError:
            hyper[key] = value
    backend = args.judge or ("exact" if args.bench == "shapes" else "openai")
    default_model = {"openai": "gpt-4.1-2025-04-14", "qwen_local": "", "exact": "exact"}[backend]
    client = OpenAIChatConfig(base_url=args.judge_base_url, api_key_env=args.judge_api_key_env,
                              auth_header=args.judge_auth_header, timeout_s=args.judge_timeout,
                              max_retries=args.judge_retries, backoff_s=args.judge_backoff)
    judge = JudgeSettings(
        backend=backend, model=args.judge_model or default_model, concurrency=args.judge_concurrency,
        parse_retries=args.judge_parse_retries, max_tokens=args.judge_max_tokens, device=args.judge_device,
        dtype=args.judge_dtype, use_cache=not args.no_judge_cache, openai=client)
    device = args.device
    if device is None:
        import torch

        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    return EvalConfig(
        bench=args.bench, bench_dir=args.bench_dir, out=args.out, model_path=args.model_path,
        stages=tuple(s for s in args.stages.split(",") if s), generation=GenSettings(args.think, args.seed, hyper),
        judge=judge, scorers=tuple(s for s in args.scorers.split(",") if s), editor_factory=args.editor_factory,
        device=device, dtype=args.dtype, grid_per_category=args.grid_per_category, show_progress=not args.no_progress,
        lock_timeout_s=args.lock_timeout)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    cfg = config_from_args(args, int(os.environ.get("LOCAL_RANK", 0)))
    barrier = broadcast = None
    if world_size > 1:
        import torch.distributed as dist

        # gloo only synchronises the stages; generation itself needs no communication
        dist.init_process_group("gloo", timeout=timedelta(hours=48))
        barrier = dist.barrier

        def broadcast(obj: Any) -> Any:  # rank 0's value on every rank
            box = [obj]
            dist.broadcast_object_list(box, src=0)
            return box[0]
    try:
        result = run_evaluation(cfg, rank, world_size, barrier=barrier, broadcast=broadcast)
    except RunFolderBusy as e:
        print(f"rank {rank}: {e}", file=sys.stderr)
        return 1
    failures = len(result.generation.failed) if result.generation else 0
    if rank == 0 and result.headline:
        print(json.dumps({"headline": result.headline, "report": str(Path(cfg.out) / "summary.md")}), flush=True)
    if world_size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    if failures:
        print(f"rank {rank}: {failures} samples failed to generate (see log); re-run to retry them", file=sys.stderr)
    judge_failed, judged = result.judge_failures()
    if judge_failed:
        print(f"{judge_failed} of {judged} items failed judging; re-run to retry them", file=sys.stderr)
    return 1 if failures or (judge_failed and args.fail_on_judge_errors) else 0


if __name__ == "__main__":
    sys.exit(main())
