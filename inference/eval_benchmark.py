"""Evaluate an editing model on a benchmark: generate -> score -> report, each stage resumable.

    python inference/eval_benchmark.py                     # ckpts/metacot on 21-Tasks-Bench (data/bench/21tasks)
    python inference/eval_benchmark.py --model-path DIR --bench 21tasks|imgedit|gedit|shapes [--bench-dir DIR] \
        [--out runs/eval/NAME] [--think] [--judge openai|qwen_local|exact] [inference knobs]

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
from inference.benchmark.run_lock import LOCK_NAME, RunFolderBusy  # noqa: E402
from inference.benchmark.schema import SAMPLES_FILE  # noqa: E402
from inference.benchmark.scorers import SCORER_NAMES  # noqa: E402
from inference.cli_args import (DEVICE_HELP, DTYPE_CHOICES, BoolFlag, HelpFormatter,  # noqa: E402
                                add_inference_flags, first_missing_folder, remove_unused_folder, resolve_device,
                                resolve_dtype, settings_from_args)
from modeling.bagel.hub import HubDownloadError, default_model_dir  # noqa: E402

DEFAULT_BENCH = "21tasks"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--model-path", metavar="DIR", help="checkpoint folder (default: ckpts/metacot, else ckpts/bagel; "
                                                      "not needed when all images exist)")
    p.add_argument("--bench", default=DEFAULT_BENCH, choices=sorted(BENCHMARKS), help="benchmark")
    p.add_argument("--bench-dir", metavar="DIR", help="benchmark folder with samples.jsonl (default: the bench's "
                   + ", ".join(f"{n}: {s.default_dir}" for n, s in BENCHMARKS.items()) + ")")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/eval/<bench>_<model folder name>"
                                                "[_think])")
    p.add_argument("--stages", default=",".join(STAGES), help="comma list of generate,score,report")
    p.add_argument("--allow-extra-categories", action="store_true",
                   help="a benchmark with a fixed category list (21tasks) may hold other categories too")
    g = p.add_argument_group("generation")
    g.add_argument("--think", action=BoolFlag, default=False, help="let the model write its CoT before editing")
    g.add_argument("--seed", type=int, default=0, help="base seed; each sample's seed derives from it and its id")
    add_inference_flags(g, with_defaults=False)
    g.add_argument("--hyper", action="append", default=[], metavar="KEY=JSON",
                   help="any other editor keyword, value parsed as JSON (repeatable)")
    g.add_argument("--device", default="auto", help=DEVICE_HELP.replace("cuda when", "cuda:LOCAL_RANK when"))
    g.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help="auto: bf16 on CUDA, fp32 on CPU")
    g.add_argument("--editor-factory", default=DEFAULT_FACTORY, help="module:function building the editor")
    j = p.add_argument_group("judge")
    j.add_argument("--judge", default=None, choices=JUDGE_BACKENDS,
                   help="default: exact for shapes, openai otherwise")
    j.add_argument("--scorers", default="", help=f"comma list from {', '.join(SCORER_NAMES)} (default per bench)")
    j.add_argument("--judge-model", default=None, help="chat model name (default gpt-4.1-2025-04-14), or "
                                                       "Qwen2.5-VL folder for qwen_local")
    j.add_argument("--judge-base-url", default=os.environ.get("JUDGE_BASE_URL", "https://api.openai.com/v1"),
                   help="OpenAI-compatible server (env JUDGE_BASE_URL)")
    j.add_argument("--judge-api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    j.add_argument("--judge-auth-header", default="bearer", choices=("bearer", "api-key"), help="key header style")
    j.add_argument("--judge-concurrency", type=int, default=8, help="requests in flight")
    j.add_argument("--judge-timeout", type=float, default=120.0, help="seconds per request")
    j.add_argument("--judge-retries", type=int, default=5,
                   help="transport retries (timeouts, 429, 5xx) by the openai SDK, backoff 0.5 s doubling to 8 s")
    j.add_argument("--judge-parse-retries", type=int, default=2, help="re-asks after an unparsable reply")
    j.add_argument("--judge-max-tokens", type=int, default=1400, help="reply length limit")
    j.add_argument("--judge-device", default="cuda", help="qwen_local only")
    j.add_argument("--judge-dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"),
                   help="qwen_local only")
    j.add_argument("--no-judge-cache", action="store_true", help="ask the judge again instead of replaying replies")
    p.add_argument("--grid-per-category", type=int, default=6, help="samples per category in grids/")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
                   help="when another command is using --out: wait up to this long for it (default: 0, refuse at once)")
    p.add_argument("--fail-on-judge-errors", action="store_true",
                   help="exit 1 when some items still failed judging after retries (default: exit 0, with a last "
                        "line saying how many)")
    return p.parse_args(argv)


def default_paths(args: argparse.Namespace) -> None:
    """Fill --model-path (ckpts/metacot, else ckpts/bagel, else none), --bench-dir and --out from their defaults."""
    spec = BENCHMARKS[args.bench]
    if args.model_path is None:
        try:
            folder, note = default_model_dir()
            args.model_path = str(folder)
            if note:
                logging.getLogger(__name__).info(note)
        except HubDownloadError:
            pass  # needed only when images are missing; the pipeline says so then
    if args.bench_dir is None:
        args.bench_dir = str(spec.default_path())
    if not (Path(args.bench_dir) / SAMPLES_FILE).is_file():
        raise ValueError(f"benchmark folder {args.bench_dir} has no {SAMPLES_FILE}; fetch it with `{spec.fetch}` "
                         "or pass --bench-dir DIR")
    if args.out is None:
        model = Path(args.model_path).name if args.model_path else "model"
        args.out = str(Path("runs", "eval", f"{args.bench}_{model}" + ("_think" if args.think else "")))


def config_from_args(args: argparse.Namespace, local_rank: int) -> EvalConfig:
    hyper = settings_from_args(args)
    for item in args.hyper:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--hyper {item!r} must look like KEY=JSON_VALUE, e.g. cfg_text_scale=4.0")
        try:
            hyper[key] = json.loads(value)
        except ValueError:
            hyper[key] = value
    backend = args.judge or ("exact" if args.bench == "shapes" else "openai")
    default_model = {"openai": "gpt-4.1-2025-04-14", "qwen_local": "", "exact": "exact"}[backend]
    client = OpenAIChatConfig(base_url=args.judge_base_url, api_key_env=args.judge_api_key_env,
                              auth_header=args.judge_auth_header, timeout_s=args.judge_timeout,
                              max_retries=args.judge_retries)
    judge = JudgeSettings(
        backend=backend, model=args.judge_model or default_model, concurrency=args.judge_concurrency,
        parse_retries=args.judge_parse_retries, max_tokens=args.judge_max_tokens, device=args.judge_device,
        dtype=args.judge_dtype, use_cache=not args.no_judge_cache, openai=client)
    device = resolve_device(args.device, local_rank)
    return EvalConfig(
        bench=args.bench, bench_dir=args.bench_dir, out=args.out, model_path=args.model_path,
        stages=tuple(s for s in args.stages.split(",") if s), generation=GenSettings(args.think, args.seed, hyper),
        judge=judge, scorers=tuple(s for s in args.scorers.split(",") if s), editor_factory=args.editor_factory,
        device=device, dtype=resolve_dtype(args.dtype, device), grid_per_category=args.grid_per_category,
        show_progress=not args.no_progress, allow_extra_categories=args.allow_extra_categories,
        lock_timeout_s=args.lock_timeout)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        default_paths(args)
        cfg = config_from_args(args, int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from modeling.bagel.config import CheckpointError  # here, not at the top: --help stays fast

    new_folder = first_missing_folder(cfg.out)
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
    except RunFolderBusy as e:  # another command holds --out: its folder, not ours to remove
        print(f"rank {rank}: {e}", file=sys.stderr)
        return 1
    except (ValueError, CheckpointError) as e:  # bad bench folder or categories, changed settings, no/bad model
        print(f"error: {e}", file=sys.stderr)
        if rank == 0:  # the run folder this command made holds no result
            remove_unused_folder(new_folder, ("config.json", LOCK_NAME))
        return 2
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
