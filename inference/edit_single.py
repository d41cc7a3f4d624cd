"""Edit one image (or a JSONL batch in one model load) from the command line.

    python inference/edit_single.py --image IN.png --instruction "TEXT" [--think] [--out OUT.png] [--seed N]
    python inference/edit_single.py --model-path DIR --batch jobs.jsonl

The model defaults to ckpts/metacot, else ckpts/bagel (bash scripts/download_ckpt.sh); the device to CUDA when
available, else the CPU in fp32; the output to outputs/<input name>_edited.png. Writes OUT and its sidecar
OUT.png.json (all parameters, the CoT text, timings). Every inference knob is a flag; booleans take --x,
--x true|false or --no-x.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from inference.cli_args import (DEVICE_HELP, DTYPE_CHOICES, BoolFlag, HelpFormatter,  # noqa: E402
                                add_inference_flags, first_missing_folder, remove_unused_folder, resolve_device,
                                resolve_dtype, settings_from_args)
from inference.cot_override import describe_cot  # noqa: E402
from inference.edit_io import EditJob, InputError, read_batch_file, validate_job  # noqa: E402
from inference.edit_modes import (ReasoningOptions, add_reasoning_arguments, run_reasoning_job,  # noqa: E402
                                  run_session_command)
from inference.inferencer import DTYPES, BagelInferencer  # noqa: E402
from inference.offload import OFFLOAD_MODES, OffloadSettings, load_bagel_offloaded  # noqa: E402
from inference.settings import InferenceSettings  # noqa: E402
from modeling.bagel.config import CheckpointError  # noqa: E402
from modeling.bagel.hub import HubDownloadError, default_model_dir  # noqa: E402

OUTPUT_DIR = Path("outputs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--model-path", metavar="DIR",
                   help="folder in the official BAGEL layout (default: ckpts/metacot, else ckpts/bagel)")
    p.add_argument("--image", metavar="PATH", help="input image")
    p.add_argument("--instruction", metavar="TEXT", help="what to change")
    p.add_argument("--out", metavar="PATH", help="output image path (.png/.jpg/.webp); its sidecar OUT.png.json is "
                                                 f"written beside it (default: {OUTPUT_DIR}/<input name>_edited.png)")
    p.add_argument("--batch", metavar="JSONL",
                   help="JSONL of {image, instruction, out[, seed, think]} edited in one model load")
    p.add_argument("--think", action=BoolFlag, default=False,
                   help="write the chain of thought first, then edit on it")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="noise seed")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                   help="auto: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--attn-backend", default="auto", choices=["auto", "flash", "flex", "sdpa"],
                   help="attention kernels")
    p.add_argument("--offload", default="none", choices=OFFLOAD_MODES,
                   help="auto: small modules and the layers that fit --max-gpu-memory on the GPU, the other layers "
                        "streamed from CPU memory; sequential: every layer streamed (lowest GPU memory)")
    p.add_argument("--max-gpu-memory", metavar="GIB",
                   help="--offload auto: GPU memory budget in GiB, activations included (default: the free memory)")
    add_inference_flags(p.add_argument_group("inference settings"), with_defaults=True)
    add_reasoning_arguments(p)
    return p


def default_output(image: str) -> Path:
    return OUTPUT_DIR / f"{Path(image).stem}_edited.png"


def resolve_model_path(model_path: str | None) -> str:
    """The given folder, else ckpts/metacot, else ckpts/bagel (saying so on stderr)."""
    if model_path is not None:
        return model_path
    try:
        folder, note = default_model_dir()
    except HubDownloadError as e:
        raise InputError(str(e)) from None
    if note:
        print(note, file=sys.stderr)
    return str(folder)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    new_folder = None
    try:
        options = ReasoningOptions.from_args(args)
        if options.session is not None:
            jobs = []
        elif args.batch:
            jobs = read_batch_file(args.batch, args.seed, args.think)
        else:
            missing = [n for n in ("image", "instruction") if getattr(args, n) is None]
            if missing:
                raise InputError(f"missing {', '.join('--' + m for m in missing)} (or pass --batch FILE.jsonl)")
            out = Path(args.out) if args.out else default_output(args.image)
            jobs = [EditJob(Path(args.image), args.instruction, out, args.seed, args.think)]
        overrides = settings_from_args(args)
        InferenceSettings.from_dict(overrides)  # validate before the (slow) model load
        offload = OffloadSettings.from_cli(args.offload, args.max_gpu_memory)
        model_path = resolve_model_path(args.model_path)
        device = resolve_device(args.device)
        dtype = resolve_dtype(args.dtype, device)
        if len(jobs) == 1:
            new_folder = first_missing_folder(jobs[0].out.parent)
            validate_job(jobs[0])  # a single edit fails before the model loads; batch jobs fail one by one
        record = {"model_path": model_path, "device": device, "dtype": dtype}
        t0 = time.perf_counter()
        if offload.mode == "none":
            inferencer = BagelInferencer.from_pretrained(model_path, device, dtype, args.attn_backend)
        else:
            bundle, placement = load_bagel_offloaded(model_path, offload, device, DTYPES[dtype], args.attn_backend)
            inferencer = BagelInferencer(bundle)
            overrides.update(placement.inference_overrides())
            record["offload"] = placement.summary()
            print(placement.describe(), file=sys.stderr)
        print(f"loaded {model_path} on {device} ({dtype}) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    except (InputError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        remove_unused_folder(new_folder)  # the output folder this command made, still empty
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
