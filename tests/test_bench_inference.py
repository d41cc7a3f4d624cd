"""The inference benchmark runs end to end on the CPU with a shrunken 7B configs file (the GPU figures in README
come from the same script on the device)."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.bench_inference import main
from tests.shrunk_configs import write_shrunk_configs


def test_inference_benchmark_reports_every_figure_on_cpu(tmp_path: Path) -> None:
    small = write_shrunk_configs(tmp_path)
    out = tmp_path / "figures.json"
    figures = main(["--config", str(small), "--device", "cpu", "--steps", "3", "--size", "64", "--decode-tokens", "4",
                    "--reference-path", "--json", str(out)])
    assert json.loads(out.read_text()) == figures
    assert figures["edit_s"] > 0 and figures["reference_path_edit_s"] > 0
    # the batched-CFG path and the per-branch reference path decode to the same image (bf16 weights on the CPU)
    assert figures["fast_vs_reference_max_pixel_diff"] <= 2
    assert figures["decode_tokens"] == 4 and figures["decode_tokens_per_s"] > 0
    # on the CPU the "graph" decoder runs its static step eagerly: identical to the eager run
    assert figures["decode_graph_equals_eager_ids"] and figures["decode_graph_vs_eager_max_logit_diff"] == 0.0
