"""Copy the trained demo model into the repository: the exported folder, a few held-out examples, a model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from modeling.bagel.config import load_config
from train.shapes_demo.init_folder import describe_config

EXAMPLE_CATEGORIES = ("relational_move", "recolor_object", "remove_colour_group")
SIZE_LIMIT_MB = 40.0


def folder_megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def ship_model(export_dir: str | Path, bench_dir: str | Path, ship_dir: str | Path, extra_card: dict) -> dict:
    """Replace ``ship_dir`` with the exported folder + ``examples/`` (source images and ``examples.json``) +
    ``model_card.json``; returns the card. Raises when the folder exceeds ``SIZE_LIMIT_MB``."""
    export_dir, bench_dir, ship_dir = Path(export_dir), Path(bench_dir), Path(ship_dir)
    if not (export_dir / "ema.safetensors").exists():
        raise FileNotFoundError(f"{export_dir} has no ema.safetensors; run the SFT stage first")
    staging = ship_dir.with_name(ship_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(export_dir, staging)
    examples = []
    rows = [json.loads(line) for line in (bench_dir / "samples.jsonl").read_text().splitlines() if line.strip()]
    (staging / "examples").mkdir()
    for category in EXAMPLE_CATEGORIES:
        row = next((r for r in rows if r["category"] == category), None)
        if row is None:
            continue
        name = f"{row['id']}.png"
        shutil.copy(bench_dir / row["source_image"], staging / "examples" / name)
        examples.append({"image": f"examples/{name}", "instruction": row["instruction"], "category": category,
                         "reference": row["reference"] | {"target_image": None}})
    (staging / "examples" / "examples.json").write_text(json.dumps(examples, indent=1))
    card = {"config": describe_config(load_config(staging)), **extra_card}
    card["folder_megabytes"] = round(folder_megabytes(staging), 2)
    (staging / "model_card.json").write_text(json.dumps(card, indent=1))
    if card["folder_megabytes"] > SIZE_LIMIT_MB:
        shutil.rmtree(staging)
        raise ValueError(f"the shipped folder would hold {card['folder_megabytes']} MB (> {SIZE_LIMIT_MB}); shrink "
                         "the model in configs/shapes_demo/model.json")
    shutil.rmtree(ship_dir, ignore_errors=True)
    staging.rename(ship_dir)
    return card
