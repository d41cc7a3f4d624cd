"""GPU agreement checks: a fixture set in bf16 (and fp32) on CUDA against the original's fp32 CPU outputs, and the
attention backends against each other on CUDA.

    python scripts/check_gpu.py ../shared/reference/bagel-tiny [--json OUT.json]

Errors are the checks' own (absolute, or scaled as the fixture README says); bf16 keeps ~3 significant digits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from inference.cli_args import HelpFormatter  # noqa: E402
from inference.reference_check import check_fixture_set  # noqa: E402
from modeling.bagel.attention import AttentionLayout, BACKENDS, flash_attn_available, packed_attention  # noqa: E402
from modeling.bagel.loader import load_bagel  # noqa: E402
from modeling.reference_cases import train_batch_from_case  # noqa: E402


def fixture_errors(set_dir: Path, dtype: torch.dtype) -> dict:
    results = check_fixture_set(set_dir, "cuda", dtype)
    return {r.name: {"status": r.status, "message": r.message,
                     "checks": {c.name: round(c.error, 6) for c in r.checks}} for r in results}


def backend_agreement() -> dict:
    layouts = {
        "training": AttentionLayout.from_splits([900, 700], [300, 400, 200, 500, 200],
                                                ["causal", "noise", "full", "full", "noise"], "cuda"),
        "cached_full": AttentionLayout.for_cached_queries([500, 0, 800], [400, 300, 400], False, "cuda"),
        "cached_causal": AttentionLayout.for_cached_queries([600, 200], [30, 1], True, "cuda"),
    }
    backends = [b for b in BACKENDS if b not in ("auto", "flash")] + (["flash"] if flash_attn_available() else [])
    out = {"flash_attn_installed": flash_attn_available()}
    gen = torch.Generator(device="cuda").manual_seed(0)
    for name, layout in layouts.items():
        lq, lk = layout.q_to_k.numel(), layout.k_doc.numel()
        for dtype in (torch.float32, torch.bfloat16):
            q = torch.randn(lq, 28, 128, device="cuda", generator=gen, dtype=dtype)
            k = torch.randn(lk, 4, 128, device="cuda", generator=gen, dtype=dtype)
            v = torch.randn(lk, 4, 128, device="cuda", generator=gen, dtype=dtype)
            ref = packed_attention(q.double(), k.double(), v.double(), layout, 128 ** -0.5, "sdpa")
            for b in backends:
                if b == "flash" and layout.uniform_mode is None:
                    continue
                key = f"{name}/{b}/{str(dtype)[6:]}"
                try:
                    got = packed_attention(q, k, v, layout, 128 ** -0.5, b)
                    out[key] = float((got.double() - ref).abs().max())
                except Exception as e:  # a backend that cannot run here is reported, not fatal
                    out[key] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return out


def model_backend_agreement(set_dir: Path) -> dict:
    """train_forward losses of the tiny model on CUDA fp32 with each backend that runs the training layout."""
    out = {}
    for backend in ("sdpa", "flex"):
        bundle = load_bagel(set_dir, torch.float32, "cuda", attn_backend=backend)
        batch = train_batch_from_case(set_dir / "cases" / "train_forward", "cuda")
        try:
            with torch.no_grad():
                losses = bundle.model.forward_train(batch)
        except Exception as e:
            return {f"train_forward_{backend}": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
        out[backend] = torch.cat([losses.ce, losses.mse.flatten()]).double().cpu()
    return {"train_forward_sdpa_vs_flex_max_abs": float((out["sdpa"] - out["flex"]).abs().max())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("set_dir", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    parts = {"fp32_cuda": lambda: fixture_errors(args.set_dir, torch.float32),
             "bf16_cuda": lambda: fixture_errors(args.set_dir, torch.bfloat16),
             "attention_backends": backend_agreement, "model_backends": lambda: model_backend_agreement(args.set_dir)}
    for name, part in parts.items():
        report[name] = part()
        if args.json:  # written after every part, so a crash keeps what was measured
            args.json.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
