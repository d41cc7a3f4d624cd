"""Flow-GRPO benchmark at the BAGEL-7B-MoT shape with random weights on one device (no download).

    python scripts/bench_rl.py [--size 512 --group 8 --num-timesteps 15 --window 3] [--modes lora,full]

Workload (issue 18): one edit prompt (a size x size source, an instruction and a CoT given as text), G edits with
a window of SDE steps among 15 timesteps, CFG text 4 / image 2 (three branches); trained set LoRA r64 on the
generation expert, then full fine-tuning of it (FSDP2, float32 masters). Per mode it reports seconds per group
rollout: batched (the G x 3 branches in one forward per step over one shared store), one member at a time over the
shared context, and one edit at a time with its own context (as the open BAGEL ports roll out; the CoT is given),
the speedups; seconds per update step (the group's window steps forward + backward, optimizer step) and peak
device memory. A mode that runs out of memory is reported as such
with its trainable parameter count. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from inference.inferencer import DTYPES, BagelInferencer  # noqa: E402
from inference.settings import InferenceSettings  # noqa: E402
from modeling.bagel.config import config_from_reference_json  # noqa: E402
from modeling.bagel.loader import BagelBundle, build_bagel  # noqa: E402
from modeling.bagel.model import QWEN25_SPECIAL_TOKENS  # noqa: E402
from modeling.diffusion.sde_window import WindowSpec  # noqa: E402
from modeling.vae.autoencoder import FluxAutoencoder  # noqa: E402
from scripts.bench_inference import CONFIG, ByteTokenizer  # noqa: E402
from train.common.distributed import init_distributed  # noqa: E402
from train.common.nan_guard import NanGuard  # noqa: E402
from train.rl.advantages import group_advantages  # noqa: E402
from train.rl.parallel import checkpoint_layers, gathered, shard_trainable  # noqa: E402
from train.rl.policy import PolicySpec  # noqa: E402
from train.rl.prompts import EditPrompt  # noqa: E402
from train.rl.rollout import RolloutSettings, rollout_group  # noqa: E402
from train.rl.trainable import select_trainable  # noqa: E402
from train.rl.update import GrpoUpdater, UpdateSettings  # noqa: E402
from train.sft.step import make_adamw  # noqa: E402

INSTRUCTION = "Replace the red car on the left with a blue bicycle and keep everything else unchanged."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=CONFIG, help="a configs JSON in the bagel-7b-mot.json format")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    p.add_argument("--size", type=int, default=512, help="edit size in pixels")
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--num-timesteps", type=int, default=15)
    p.add_argument("--window", type=int, default=3, help="SDE steps (from the first step)")
    p.add_argument("--cot-chars", type=int, default=400, help="CoT length (one token per byte here)")
    p.add_argument("--lora-rank", type=int, default=64)
    p.add_argument("--modes", default="lora,full", help="comma-separated: lora, full")
    p.add_argument("--repeats", type=int, default=2, help="timed runs of each measurement (median)")
    p.add_argument("--no-ac", action="store_true", help="no activation checkpointing of the decoder layers")
    p.add_argument("--attn-backend", default="auto", choices=["auto", "flash", "flex", "sdpa"])
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p.parse_args(argv)


def random_bundle(args: argparse.Namespace) -> BagelBundle:
    config = config_from_reference_json(args.config)
    dtype = DTYPES[args.dtype]
    model = build_bagel(config, args.device, dtype, QWEN25_SPECIAL_TOKENS, args.attn_backend, init_seed=0).eval()
    with torch.device(args.device):
        vae = FluxAutoencoder(config.ae)
    return BagelBundle(model, vae.to(dtype).eval(), ByteTokenizer(), QWEN25_SPECIAL_TOKENS, config)


def timed(fn, device: torch.device, repeats: int) -> tuple[object, float]:
    """(last result, median seconds) over ``repeats`` runs."""
    times, out = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def bench_mode(args: argparse.Namespace, mode: str, device: torch.device) -> dict:
    bundle = random_bundle(args)
    inferencer = BagelInferencer(bundle)
    model = bundle.model
    size = args.size
    settings = RolloutSettings(
        group_size=args.group, num_timesteps=args.num_timesteps,
        window=WindowSpec(args.window, "fixed", 0, min(args.num_timesteps - 2, 7)),
        policy=PolicySpec("flow_sde", 1.3, True, 4.0, 2.0, (0.0, 1.0), "global"), cot_source="dataset",
        inference=InferenceSettings(vae_transform=(size, size, 16), compile_layers=False))
    cot = "<think>" + "plan the edit step by step. " * (args.cot_chars // 28) + "</think>"
    prompt = EditPrompt("bench", Image.effect_noise((size, size), 64).convert("RGB"), INSTRUCTION, cot)
    counts = select_trainable(model, mode, lora_rank=args.lora_rank)
    if not args.no_ac:
        checkpoint_layers(model)
    units = shard_trainable(model, DTYPES[args.dtype], torch.float32, device.type) if mode == "full" else []
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_adamw(params, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, device=device)
    updater = GrpoUpdater(inferencer, settings, UpdateSettings(), optimizer, None, NanGuard(10**6), device, 1,
                          sharded=bool(units))
    figures: dict = {"trainable_params": sum(counts.values())}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def rollout(**baseline: bool):
        with gathered(units):
            return rollout_group(inferencer, prompt, settings, 0, seed=1, **baseline)

    rollout()  # warm-up (kernels, allocator)
    group, batched = timed(rollout, device, args.repeats)
    _, shared = timed(lambda: rollout(one_at_a_time=True), device, args.repeats)
    _, per_edit = timed(lambda: rollout(one_at_a_time=True, context_per_member=True), device, args.repeats)
    figures.update(rollout_batched_s_per_group=batched, rollout_one_at_a_time_s_per_group=shared,
                   rollout_speedup=shared / batched, rollout_per_edit_s_per_group=per_edit,
                   rollout_speedup_vs_per_edit=per_edit / batched)
    rewards = torch.arange(args.group, dtype=torch.float32)[None]  # distinct rewards: every member is trained
    advantages = group_advantages(rewards)
    updater.update([group], advantages)  # warm-up
    _, figures["update_s_per_step"] = timed(lambda: updater.update([group], advantages), device, args.repeats)
    if device.type == "cuda":
        figures["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    figures["sde_window_steps"] = group.window
    # 4 significant figures, not fixed decimals: a tiny CPU run's millisecond timings keep their ratios
    return {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in figures.items()}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    created = not torch.distributed.is_initialized()
    info = init_distributed(args.device)  # full fine-tuning shards with FSDP2 (a world of one)
    device = info.device
    figures = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "size": args.size, "group": args.group,
               "num_timesteps": args.num_timesteps, "window": args.window, "cfg": [4.0, 2.0],
               "lora_rank": args.lora_rank, "dtype": args.dtype, "activation_checkpointing": not args.no_ac}
    for mode in args.modes.split(","):
        try:
            figures[mode] = bench_mode(args, mode, device)
        except torch.OutOfMemoryError as e:
            figures[mode] = {"fits": False, "error": str(e).splitlines()[0]}
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    if created:
        torch.distributed.destroy_process_group()
    return figures


if __name__ == "__main__":
    main()
