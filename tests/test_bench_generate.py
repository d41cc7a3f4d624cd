"""Generation stage: resumable after an interruption, sharded by rank, seeds independent of the world size."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from inference.benchmark.files import read_json
from inference.benchmark.generate import GenSettings, run_generation, sample_seed, shard
from inference.benchmark.layout import RunLayout
from inference.benchmark.schema import load_benchmark
from tests.test_bench_support import FakeEditor, make_bench, shifted

SPEC = [(f"s{i}", "color" if i % 2 else "style", (10 * i, 20, 30)) for i in range(6)]


def test_interrupted_generation_resumes_without_redoing_finished_samples(tmp_path):
    make_bench(tmp_path / "bench", SPEC)
    bench = load_benchmark(tmp_path / "bench")
    layout = RunLayout(tmp_path / "run")
    settings = GenSettings(think=True, seed=3, hyper={"cfg_text_scale": 4.0})

    with pytest.raises(KeyboardInterrupt):  # killed after 2 edits
        run_generation(FakeEditor(stop_after=2), bench, layout, settings, show_progress=False)
    done = sorted(p.stem for p in (tmp_path / "run" / "gen").glob("*.json"))
    assert done == ["s0", "s1"]
    first_mtimes = {i: os.stat(layout.image(i)).st_mtime_ns for i in done}
    # a crash between writing the image and the record leaves an image without record: it must be redone
    Image.new("RGB", (4, 4)).save(layout.image("s2"))

    editor = FakeEditor()
    outcome = run_generation(editor, bench, layout, settings, show_progress=False)
    assert sorted(outcome.already_done) == ["s0", "s1"]
    assert sorted(outcome.generated) == ["s2", "s3", "s4", "s5"] and not outcome.failed
    assert [c[0] for c in editor.calls] == [f"edit sample s{i}" for i in range(2, 6)]
    assert {i: os.stat(layout.image(i)).st_mtime_ns for i in done} == first_mtimes
    assert not list((tmp_path / "run").rglob("*.tmp"))

    record = read_json(layout.gen_record("s2"))
    assert record["cot_text"] == "<think>\nplan for edit sample s2\n</think>"
    assert record["settings"] == {"think": True, "seed": 3, "hyper": {"cfg_text_scale": 4.0}}
    assert record["seed"] == sample_seed(3, "s2") and record["seconds"] >= 0 and record["timings"] == {"total": 0.01}
    assert editor.calls[0][1:] == (True, sample_seed(3, "s2"), {"cfg_text_scale": 4.0})
    with Image.open(layout.image("s2")) as im:
        assert im.getpixel((0, 0)) == shifted((20, 20, 30))

    again = FakeEditor()
    assert run_generation(again, bench, layout, settings, show_progress=False).generated == [] and not again.calls


def test_shards_are_disjoint_and_seeds_do_not_depend_on_world_size(tmp_path):
    make_bench(tmp_path / "bench", SPEC)
    bench = load_benchmark(tmp_path / "bench")
    seeds = {}
    for world in (1, 2, 4):
        layout = RunLayout(tmp_path / f"run{world}")
        owned = []
        for rank in range(world):
            outcome = run_generation(FakeEditor(), bench, layout, GenSettings(), rank, world, show_progress=False)
            owned += outcome.generated
        assert sorted(owned) == [s[0] for s in SPEC] and len(owned) == len(set(owned))
        seeds[world] = {i: read_json(layout.gen_record(i))["seed"] for i in owned}
    assert seeds[1] == seeds[2] == seeds[4]
    assert [s.id for s in shard(bench.samples, 1, 2)] == ["s1", "s3", "s5"]  # strided, mixing categories
    with pytest.raises(ValueError, match="rank"):
        shard(bench.samples, 2, 2)


def test_unreadable_source_and_editor_errors_are_counted_not_fatal(tmp_path):
    make_bench(tmp_path / "bench", SPEC[:3])
    (tmp_path / "bench" / "images" / "s1.png").write_bytes(b"not a png")
    bench = load_benchmark(tmp_path / "bench")

    class Flaky(FakeEditor):
        def edit(self, image, instruction, **kw):
            if instruction.endswith("s2"):
                raise RuntimeError("CUDA out of memory")
            return super().edit(image, instruction, **kw)

    outcome = run_generation(Flaky(), bench, RunLayout(tmp_path / "run"), GenSettings(), show_progress=False)
    assert outcome.generated == ["s0"]
    assert "unreadable source image" in outcome.failed["s1"] and "out of memory" in outcome.failed["s2"]
