"""Inference benchmark of the full BAGEL-7B-MoT shape with random bf16 weights (no download).

    python scripts/bench_inference.py [--steps 50] [--size 1024] [--decode-tokens 256] [--reference-path]
        [--offload auto --max-gpu-memory 20 | --offload sequential]

Measures on one GPU: (a) seconds per 1024x1024 edit (50 steps, cfg_text 4, cfg_img 2, cfg_interval [0.4, 1],
timestep_shift 3, renorm global, no thinking, VAE on the GPU); (b) thinking decode speed (tokens/s, batch 1, after a
full edit prompt); (c) peak GPU memory. With --reference-path it also times the per-branch CFG path (three forwards
per step) in the same run and reports how far the fast path's latent is from it. With --offload the model is
built in CPU memory and placed by inference/offload.py (layers that do not fit streamed from CPU, eager decoding).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from inference.cli_args import HelpFormatter  # noqa: E402
from inference.inferencer import BagelInferencer  # noqa: E402
from inference.offload import OFFLOAD_MODES, OffloadSettings, place_bundle  # noqa: E402
from inference.settings import InferenceSettings, NoiseSource  # noqa: E402
from modeling.bagel.config import config_from_reference_json  # noqa: E402
from modeling.bagel.loader import BagelBundle, build_bagel  # noqa: E402
from modeling.bagel.model import QWEN25_SPECIAL_TOKENS  # noqa: E402
from modeling.vae.autoencoder import FluxAutoencoder  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "model" / "bagel-7b-mot.json"


class ByteTokenizer:
    """Stand-in tokenizer (one id per byte) so the benchmark needs no tokenizer files; cost is negligible."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(chr(i % 256) for i in ids)

    def convert_ids_to_tokens(self, i: int) -> str:
        return f"<{i}>"


def random_bundle(device: str, attn_backend: str, config_path: Path = CONFIG) -> BagelBundle:
    config = config_from_reference_json(config_path)
    model = build_bagel(config, device, torch.bfloat16, QWEN25_SPECIAL_TOKENS, attn_backend, init_seed=0).eval()
    with torch.device(device):
        vae = FluxAutoencoder(config.ae)
    vae = vae.to(torch.bfloat16).eval()
    return BagelBundle(model, vae, ByteTokenizer(), QWEN25_SPECIAL_TOKENS, config)


def placed_bundle(args: argparse.Namespace, offload: OffloadSettings) -> tuple[BagelBundle, dict, dict]:
    """The random bundle on the device, or with offload moved to CPU memory (as a real load would leave it) and
    placed; also the inference overrides and the figures of the placement."""
    if offload.mode == "none":
        return random_bundle(args.device, args.attn_backend, args.config), {}, {"mode": "none"}
    bundle = random_bundle(args.device, args.attn_backend, args.config)  # random init is fast on the GPU ...
    bundle.model.to("cpu")  # ... then the weights go to CPU memory, where a real load would put them
    torch.cuda.empty_cache()
    placement = place_bundle(bundle, offload, args.device)
    print(placement.describe(), file=sys.stderr)
    return bundle, placement.inference_overrides(), placement.summary()


def timed(fn, device: str):
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda _: None)
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--decode-tokens", type=int, default=256)
    p.add_argument("--attn-backend", default="auto")
    p.add_argument("--reference-path", action="store_true", help="also time one forward per CFG branch")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--profile", type=Path, help="write a profiler table of a 3-step edit here")
    p.add_argument("--profile-decode", type=Path, help="write a profiler table of 16 eager decode steps here")
    p.add_argument("--skip-edit", action="store_true", help="only the decode figures")
    p.add_argument("--device", default="cuda")
    p.add_argument("--config", type=Path, default=CONFIG, help="a configs JSON in the bagel-7b-mot.json format")
    p.add_argument("--offload", default="none", choices=OFFLOAD_MODES, help="see inference/offload.py")
    p.add_argument("--max-gpu-memory", type=float, metavar="GIB", help="GPU budget of --offload auto")
    p.add_argument("--compile-layers", action="store_true",
                   help="torch.compile the decoder layers (the warm-up edit and decode then include compilation)")
    args = p.parse_args(argv)
    device = args.device
    cuda = device.startswith("cuda")
    try:
        bundle, overrides, offload_figures = placed_bundle(args, OffloadSettings(args.offload, args.max_gpu_memory))
    except ValueError as e:
        p.error(str(e))
    settings = InferenceSettings(num_timesteps=args.steps, cfg_text_scale=4.0, cfg_img_scale=2.0,
                                 cfg_interval=(0.4, 1.0), timestep_shift=3.0, cfg_renorm_type="global",
                                 **{"compile_layers": args.compile_layers, **overrides})
    inferencer = BagelInferencer(bundle, settings)
    image = Image.effect_noise((args.size, args.size), 64).convert("RGB")
    instruction = "Replace the red car on the left with a blue bicycle and keep everything else unchanged."

    figures = {"device": torch.cuda.get_device_name(device) if cuda else "cpu", "torch": torch.__version__,
               "size": args.size, "steps": args.steps, "attn_backend": args.attn_backend, "offload": offload_figures,
               "compile_layers": settings.compile_layers}
    if not args.skip_edit:
        # warm-up (kernels, allocator, compilation): 10 steps run both the guided and the cond-only step shapes
        _, figures["warmup_edit_10_steps_s"] = timed(lambda: inferencer.edit(image, instruction, num_timesteps=10),
                                                     device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        fast, fast_s = timed(lambda: inferencer.edit(image, instruction, seed=0), device)
        figures.update(edit_s=round(fast_s, 2), edit_timings={k: round(v, 3) for k, v in fast.timings.items()},
                       peak_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 1) if cuda else None)

    if args.reference_path and not args.skip_edit:
        slow, slow_s = timed(lambda: inferencer.edit(image, instruction, seed=0, batch_cfg=False, compile_layers=False),
                             device)
        figures["reference_path_edit_s"] = round(slow_s, 2)
        diff = torch.from_numpy(np.array(fast.image, dtype=np.float32) - np.array(slow.image, dtype=np.float32))
        figures["fast_vs_reference_max_pixel_diff"] = float(diff.abs().max())
        figures["fast_vs_reference_mean_pixel_diff"] = round(float(diff.abs().mean()), 3)

    decode_settings = InferenceSettings.from_dict({**settings.to_dict(), "max_think_token_n": args.decode_tokens + 1})
    contexts, _ = inferencer.prepare_edit(image, instruction, decode_settings, True, NoiseSource(0, device))
    # warm-up with the timed run's store size (compiled layers specialise on it); a greedy repeat must give the same ids
    warm, figures["warmup_decode_s"] = timed(lambda: inferencer.generate_text(contexts.cond, decode_settings), device)
    text, decode_s = timed(lambda: inferencer.generate_text(contexts.cond, decode_settings), device)
    figures["decode_repeat_equals_ids"] = warm.token_ids == text.token_ids
    eager_settings = InferenceSettings.from_dict({**decode_settings.to_dict(), "cuda_graphs": False})
    new_tokens = len(text.token_ids) - 1
    figures.update(decode_tokens=new_tokens, decode_context_tokens=contexts.cond.length,
                   decode_tokens_per_s=round(new_tokens / decode_s, 1))
    if decode_settings.cuda_graphs:  # with offload the timed decode was eager already
        eager, eager_s = timed(lambda: inferencer.generate_text(contexts.cond, eager_settings), device)
        same = next((i for i, (a, b) in enumerate(zip(text.token_ids, eager.token_ids)) if a != b),
                    min(len(text.token_ids), len(eager.token_ids)))  # steps fed identical tokens
        diff = (text.step_logits[:same].float() - eager.step_logits[:same].float()).abs().max()
        figures.update(decode_eager_tokens_per_s=round((len(eager.token_ids) - 1) / eager_s, 1),
                       decode_graph_equals_eager_ids=text.token_ids == eager.token_ids,
                       decode_graph_vs_eager_max_logit_diff=float(diff), decode_graph_vs_eager_same_ids=same)
    figures["peak_gib_all"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 1) if cuda else None
    if args.profile_decode:
        from torch.profiler import ProfilerActivity, profile

        short = InferenceSettings.from_dict({**eager_settings.to_dict(), "max_think_token_n": 16})
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            inferencer.generate_text(contexts.cond, short)
            torch.cuda.synchronize(device)
        args.profile_decode.write_text(prof.key_averages().table(sort_by="cuda_time_total", row_limit=30))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            inferencer.edit(image, instruction, seed=0, num_timesteps=3)
            torch.cuda.synchronize(device)
        args.profile.write_text(prof.key_averages().table(sort_by="cuda_time_total", row_limit=30))
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
