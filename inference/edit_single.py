"""Edit one image (or a JSONL batch in one model load) from the command line.

    python inference/edit_single.py --model-path DIR --image IN.png --instruction "TEXT" --out OUT.png \
        [--think] [--seed N] [--device cuda|cpu] [--dtype bf16|fp32] [--num-timesteps N] [--cfg-text-scale X] ...
    python inference/edit_single.py --model-path DIR --batch jobs.jsonl

Writes OUT.png and OUT.json (all parameters, the CoT text, timings). Every inference knob is a flag (dashes).
Reasoning: --reflect [--max-rounds N] [--contact-sheet PATH] judges and refines the result; --cot-file FILE edits
following a given Meta-CoT; --print-cot prints the plan; --session DIR [--replay NEWDIR] edits across calls
(inference/edit_modes.py).
On a GPU smaller than the model: --offload auto [--max-gpu-memory GIB] keeps what fits on the GPU and streams the
other layers from CPU memory; --offload sequential streams every layer (see inference/offload.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from inference.cot_override import describe_cot  # noqa: E402
from inference.edit_io import EditJob, InputError, read_batch_file, validate_job  # noqa: E402
from inference.edit_modes import (ReasoningOptions, add_reasoning_arguments, run_reasoning_job,  # noqa: E402
                                  run_session_command)
from inference.inferencer import DTYPES, BagelInferencer  # noqa: E402
from inference.offload import OFFLOAD_MODES, OffloadSettings, load_bagel_offloaded  # noqa: E402
from inference.settings import InferenceSettings  # noqa: E402
from modeling.bagel.config import CheckpointError  # noqa: E402

_SKIP = {"extra"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-path", required=True, help="folder in the official BAGEL layout")
    p.add_argument("--image", help="input image")
    p.add_argument("--instruction", help="what to change")
    p.add_argument("--out", help="output image path (.png/.jpg/.webp); OUT.json is written beside it")
    p.add_argument("--batch", help="JSONL of {image, instruction, out[, seed, think]} edited in one model load")
    p.add_argument("--think", action="store_true", help="write the chain of thought first, then edit on it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    p.add_argument("--attn-backend", default="auto", choices=["auto", "flash", "flex", "sdpa"])
    p.add_argument("--offload", default="none", choices=OFFLOAD_MODES,
                   help="auto: small modules and the layers that fit --max-gpu-memory on the GPU, the other layers "
                        "streamed from CPU memory; sequential: every layer streamed (lowest GPU memory)")
    p.add_argument("--max-gpu-memory", metavar="GIB",
                   help="--offload auto: GPU memory budget in GiB, activations included (default: the free memory)")
    defaults = InferenceSettings()
    for f in fields(InferenceSettings):
        if f.name in _SKIP:
            continue
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        if isinstance(default, bool):
            p.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=default,
                           help=f"true/false (default {default})")
        elif isinstance(default, tuple):
            p.add_argument(flag, type=type(default[0]), nargs=len(default), default=list(default),
                           help=f"default {' '.join(map(str, default))}")
        else:
            p.add_argument(flag, type=type(default), default=default, help=f"default {default}")
    add_reasoning_arguments(p)
    return p


def settings_overrides(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in fields(InferenceSettings) if f.name not in _SKIP}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = ReasoningOptions.from_args(args)
        if options.session is not None:
            jobs = []
        elif args.batch:
            jobs = read_batch_file(args.batch, args.seed, args.think)
        else:
            missing = [n for n in ("image", "instruction", "out") if getattr(args, n) is None]
            if missing:
                raise InputError(f"missing {', '.join('--' + m for m in missing)} (or pass --batch FILE.jsonl)")
            jobs = [EditJob(Path(args.image), args.instruction, Path(args.out), args.seed, args.think)]
        if len(jobs) == 1:
            validate_job(jobs[0])  # a single edit fails before the model loads; batch jobs fail one by one
        overrides = settings_overrides(args)
        InferenceSettings.from_dict(overrides)  # validate before the (slow) model load
        offload = OffloadSettings.from_cli(args.offload, args.max_gpu_memory)
        record = {"model_path": args.model_path, "device": args.device, "dtype": args.dtype}
        t0 = time.perf_counter()
        if offload.mode == "none":
            inferencer = BagelInferencer.from_pretrained(args.model_path, args.device, args.dtype, args.attn_backend)
        else:
            bundle, placement = load_bagel_offloaded(args.model_path, offload, args.device, DTYPES[args.dtype],
                                                     args.attn_backend)
            inferencer = BagelInferencer(bundle)
            overrides.update(placement.inference_overrides())
            record["offload"] = placement.summary()
            print(placement.describe(), file=sys.stderr)
        print(f"loaded {args.model_path} on {args.device} ({args.dtype}) in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
    except (InputError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if options.session is not None:
        try:
            return run_session_command(inferencer, args, options, overrides, record)
        except (InputError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    failures = 0
    for job in jobs:
        bar = tqdm(total=args.num_timesteps - 1, desc=job.out.name, unit="step", file=sys.stderr, leave=False)
        try:
            result = run_reasoning_job(inferencer, job, options, {**overrides, "on_step": lambda i, n: bar.update(1)},
                                       record)
            bar.close()
            if options.print_cot:
                print(describe_cot(result.think_text))
            print(json.dumps({"out": str(job.out), "seconds": round(result.timings["total_s"], 2),
                              "think_text": result.think_text}))
        except (InputError, ValueError) as e:
            bar.close()
            failures += 1
            print(f"error: {job.image}: {e}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
