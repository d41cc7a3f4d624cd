"""Look at a mix before training on it: per-dataset statistics, and packed batches dumped as images + text."""

from __future__ import annotations

import json
import os
from itertools import islice
from typing import Any

import numpy as np
import torch
from PIL import Image

from data.mix_config import MixConfig
from data.mix_stream import open_source
from data.packed_dataset import DataStateTracker, PackedMixDataset
from data.sources.stream import build_catalog


def mix_statistics(mix: MixConfig) -> list[dict]:
    """One row per dataset: group, weight share, files, read units, rows used (after caps)."""
    total_weight = sum(g.weight for g in mix.groups)
    stats = []
    for group in mix.groups:
        for name, cap in group.datasets.items():
            source = open_source(group.infos[name])
            catalog = build_catalog([source], [cap])
            stats.append({"group": group.name, "dataset": name, "group_share": group.weight / total_weight,
                          "files": len(source.paths), "units": len(catalog),
                          "rows_used": sum(u.num_rows for u in catalog), "cap": cap,
                          "unreadable_files": len(getattr(source, "unreadable", []))})
    return stats


def format_statistics(stats: list[dict]) -> str:
    header = f"{'group':<16}{'dataset':<26}{'share':>7}{'files':>7}{'units':>8}{'rows used':>11}{'bad files':>10}"
    lines = [header, "-" * len(header)]
    for s in stats:
        lines.append(f"{s['group']:<16}{s['dataset']:<26}{s['group_share']:>7.2f}{s['files']:>7}{s['units']:>8}"
                     f"{s['rows_used']:>11}{s['unreadable_files']:>10}")
    return "\n".join(lines)


def pixels_to_image(pixels: torch.Tensor) -> Image.Image:
    """[3, H, W] in [-1, 1] -> RGB image."""
    array = ((pixels.float() * 0.5 + 0.5).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(array))


def unpatchify(tokens: torch.Tensor, position_ids: torch.Tensor, max_per_side: int, patch: int) -> torch.Tensor:
    """Inverse of ``patchify`` for one image, its grid read off the flattened position ids."""
    h = int(position_ids.max()) // max_per_side + 1
    w = int(position_ids.max()) % max_per_side + 1
    return tokens.reshape(h, w, patch, patch, 3).permute(4, 0, 2, 1, 3).reshape(3, h * patch, w * patch)


def _save_png(image: Image.Image, path: str) -> None:
    tmp = f"{path}.tmp"
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def _save_text(text: str, path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def describe_batch(batch: dict, tokenizer: Any, mix: MixConfig) -> str:
    """The packed sequence split by split: decoded text (CE targets marked), image blocks by file name."""
    text_at = dict(zip(batch["packed_text_indexes"].tolist(), batch["packed_text_ids"].tolist()))
    ce = set(batch["ce_loss_indexes"].tolist())
    owner = batch["packed_sample_ids"].tolist()
    vit_starts = np.cumsum([0] + batch["vit_token_seqlens"].tolist())
    vit_first = batch["packed_vit_token_indexes"][torch.as_tensor(vit_starts[:-1], dtype=torch.long)].tolist() \
        if batch["packed_vit_token_indexes"].numel() else []
    lines, start, vae_image, current = [], 0, 0, -1
    for length, mode in zip(batch["split_lens"], batch["attn_modes"]):
        sample = owner[start]
        if sample != current:
            current = sample
            lines.append(f"\n=== sample {sample}: {batch['dataset_name'][sample]} / {batch['sample_ids'][sample]} "
                         f"({batch['sample_lens'][sample]} tokens)")
        inner = range(start + 1, start + length - 1)
        if start + 1 in vit_first:
            lines.append(f"[{mode}] ViT image, {length - 2} patches -> vit_{vit_first.index(start + 1)}.png")
        elif length > 2 and all(i not in text_at for i in inner):
            h, w = batch["patchified_vae_latent_shapes"][vae_image]
            role = "noised target, MSE" if mode == "noise" else "clean condition"
            lines.append(f"[{mode}] VAE image {h}x{w} latent tokens ({role}) -> vae_{vae_image}.png")
            vae_image += 1
        else:
            ids = [text_at[i] for i in range(start, start + length)]
            marked = "" if not ce & set(range(start, start + length)) else "  <- CE on this segment"
            lines.append(f"[{mode}] {tokenizer.decode(ids)!r}{marked}")
        start += length
    return "\n".join(lines).lstrip("\n") + "\n"


def dump_batches(mix: MixConfig, tokenizer: Any, special_tokens: dict, out_dir: str, num_batches: int = 2) -> list[str]:
    """Writes ``batch_NNN/`` folders (sequence.txt, summary.json, vae_K.png, vit_K.png); returns their paths."""
    dataset = PackedMixDataset(mix, tokenizer, special_tokens)
    tracker = DataStateTracker()
    cfg = mix.packing
    written = []
    for b, batch in enumerate(islice(iter(dataset), num_batches)):
        tracker.update(batch)
        folder = os.path.join(out_dir, f"batch_{b:03d}")
        os.makedirs(folder, exist_ok=True)
        for k, ((h, w), padded) in enumerate(zip(batch["patchified_vae_latent_shapes"], batch["padded_images"])):
            side = cfg.vae_downsample
            _save_png(pixels_to_image(padded[:, : h * side, : w * side]), os.path.join(folder, f"vae_{k}.png"))
        bounds = np.cumsum([0] + batch["vit_token_seqlens"].tolist())
        for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            pixels = unpatchify(batch["packed_vit_tokens"][lo:hi], batch["packed_vit_position_ids"][lo:hi],
                                cfg.vit_max_num_patch_per_side, cfg.vit_patch_size)
            _save_png(pixels_to_image(pixels), os.path.join(folder, f"vit_{k}.png"))
        _save_text(describe_batch(batch, tokenizer, mix), os.path.join(folder, "sequence.txt"))
        summary = {key: batch[key] for key in ("sequence_length", "sample_lens", "split_lens", "attn_modes",
                                               "dataset_name", "sample_ids")}
        summary.update(n_ce_tokens=batch["ce_loss_indexes"].numel(), n_mse_tokens=batch["mse_loss_indexes"].numel(),
                       skipped=tracker.skip_counts())
        _save_text(json.dumps(summary, indent=1), os.path.join(folder, "summary.json"))
        written.append(folder)
    return written
