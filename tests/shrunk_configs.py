"""The 7B-MoT configs file shrunk to a tiny width, for benchmark scripts run at test size on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.bench_inference import CONFIG

SHRINK = {"llm_config.json": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=2),
          "vit_config.json": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                                  image_size=224),
          "bagel_config (app.py)": dict(vit_max_num_patch_per_side=16, max_latent_size=16),
          "ae_params (load_ae)": dict(ch=32, ch_mult=[1, 1, 1, 1], num_res_blocks=1)}


def write_shrunk_configs(folder: Path) -> Path:
    """``configs/model/bagel-7b-mot.json`` with every section narrowed by ``SHRINK``, written into ``folder``."""
    configs = json.loads(CONFIG.read_text())
    for section, values in SHRINK.items():
        configs[section].update(values)
    path = folder / "configs.json"
    path.write_text(json.dumps(configs))
    return path
