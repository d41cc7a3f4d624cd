"""ShapesEdit export: parquet shards in the shared schema, deterministic by seed, and the benchmark folder format."""

import io
import json

import pyarrow.parquet as pq
import pytest
from PIL import Image

from data.metacot import MetaCoT
from data.sample_schema import COLUMNS
from data.shapes_edit.export import KINDS, generate_dataset, write_benchmark
from data.shapes_edit.recover import recover_scene
from data.shapes_edit.scene import Scene
from scripts.shapes_edit import contact_sheet as sheet_cli
from scripts.shapes_edit import generate as generate_cli


def _table(root, kind):
    return pq.read_table(root / kind).sort_by("id")


def test_shards_have_the_schema_columns_and_valid_rows(tmp_path):
    manifest = generate_dataset(tmp_path, 30, seed=3, size=128, shard_size=8, workers=2)
    assert manifest["samples"] == 30 and manifest["skipped"] == 0 and manifest["shards"] == 4
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    for kind in KINDS:
        table = _table(tmp_path, kind)
        assert table.column_names == list(COLUMNS) and table.num_rows == 30
        assert set(table.column("kind").to_pylist()) == {kind}
    cot_rows = _table(tmp_path, "edit_cot").to_pylist()
    assert len({r["category"] for r in cot_rows}) == 21
    for row in cot_rows:
        meta = json.loads(row["meta"])
        source = Image.open(io.BytesIO(row["source_image"])).convert("RGB")
        target = Image.open(io.BytesIO(row["target_image"])).convert("RGB")
        assert source.size == target.size == (128, 128)
        assert recover_scene(source) == Scene.from_dict(meta["source_scene"])
        assert recover_scene(target) == Scene.from_dict(meta["target_scene"])
        MetaCoT.from_dict(json.loads(row["cot"]))
    assert all(r["cot"] is None for r in _table(tmp_path, "edit").to_pylist())
    for row in _table(tmp_path, "understanding").to_pylist():
        turns = json.loads(row["conversation"])
        assert row["target_image"] is None and len(turns) == 6 and turns[0]["role"] == "user"


def test_generation_is_deterministic_by_seed_whatever_the_worker_count(tmp_path):
    generate_dataset(tmp_path / "a", 12, seed=5, size=96, shard_size=5, workers=1)
    generate_dataset(tmp_path / "b", 12, seed=5, size=96, shard_size=5, workers=2)
    generate_dataset(tmp_path / "c", 12, seed=6, size=96, shard_size=5, workers=1)
    for kind in KINDS:
        a, b = _table(tmp_path / "a", kind), _table(tmp_path / "b", kind)
        assert a.equals(b)
    a, c = _table(tmp_path / "a", "edit_cot"), _table(tmp_path / "c", "edit_cot")
    assert a.column("source_image").to_pylist() != c.column("source_image").to_pylist()


def test_benchmark_folder_follows_the_shared_format(tmp_path):
    assert write_benchmark(tmp_path, per_category=2, seed=0, size=128) == 42
    records = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len({r["id"] for r in records}) == 42
    for r in records:
        assert set(r) == {"id", "source_image", "instruction", "category", "language", "reference"}
        assert r["source_image"] == f"images/{r['id']}.png" and r["language"] == "en"
        assert set(r["reference"]) == {"source_scene", "target_scene", "cot", "target_image"}
        assert r["reference"]["target_image"] == f"images/{r['id']}_target.png"
        assert (tmp_path / r["source_image"]).is_file() and (tmp_path / r["reference"]["target_image"]).is_file()
    assert not list(tmp_path.rglob("*.tmp"))


def test_benchmark_and_training_streams_are_disjoint(tmp_path):
    write_benchmark(tmp_path / "bench", per_category=1, seed=0, size=96)
    generate_dataset(tmp_path / "train", 42, seed=0, size=96, shard_size=42, workers=1)
    bench = {json.dumps(json.loads(line)["reference"]["source_scene"], sort_keys=True)
             for line in (tmp_path / "bench" / "samples.jsonl").read_text().splitlines()}
    train = {json.dumps(json.loads(m)["source_scene"], sort_keys=True)
             for m in _table(tmp_path / "train", "edit").column("meta").to_pylist()}
    assert not bench & train


def test_clis_write_outputs_and_reject_bad_sizes(tmp_path, capsys):
    generate_cli.main(["--out", str(tmp_path / "d"), "--num-samples", "5", "--workers", "1", "--size", "64",
                       "--bench-dir", str(tmp_path / "b"), "--bench-per-category", "1"])
    assert json.loads(capsys.readouterr().out.splitlines()[0])["samples"] == 5
    assert len((tmp_path / "b" / "samples.jsonl").read_text().splitlines()) == 21
    with pytest.raises(SystemExit):
        generate_cli.parse_args(["--out", "x", "--size", "1024"])
    sheet_cli.main(["--out", str(tmp_path / "sheet.png"), "--thumb", "64"])
    small = Image.open(tmp_path / "sheet.png")
    assert small.size[0] > 3 * 2 * 64 and small.size[1] > 7 * 64
