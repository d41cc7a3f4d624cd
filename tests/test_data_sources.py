"""Sources and the sharded stream: row-group streaming, JSONL blocks, a split with no duplicates, caps, mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.demo_records import demo_records
from data.parquet_writer import jsonl_to_parquet, write_parquet_shards
from data.render import SampleError
from data.sources.jsonl import JsonlSource
from data.sources.parquet import ParquetSource
from data.sources.stream import ShardedStream


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("parquet")
    write_parquet_shards(demo_records(50, kinds=("text",)), str(out), rows_per_shard=20, row_group_size=6)
    return str(out)


def ids_of_epoch(stream: ShardedStream, n: int) -> list[str]:
    return [stream.next_row()[0]["id"] for _ in range(n)]


def test_parquet_units_are_row_groups(shards: str) -> None:
    source = ParquetSource("p", [shards])
    units = source.list_units()
    assert [u.num_rows for u in units] == [6, 6, 6, 2] * 2 + [6, 4]
    rows = source.read_unit(units[1])
    assert [r["id"] for r in rows] == [f"text-{i:06d}" for i in range(6, 12)]


@pytest.mark.parametrize("num_workers", [1, 3, 8, 16])  # 16 > 10 units: the row-level split
def test_split_covers_every_row_once_per_epoch(shards: str, num_workers: int) -> None:
    source = ParquetSource("p", [shards])
    streams = [ShardedStream([source], [None], seed=7, worker=w, num_workers=num_workers) for w in range(num_workers)]
    assert streams[0].by_unit == (num_workers <= 10)
    seen: list[str] = []
    for s in streams:
        share = sum(len(rows) for _, rows in s._epoch_plan())
        seen += ids_of_epoch(s, share)
        assert s.epoch == 0
    assert sorted(seen) == [f"text-{i:06d}" for i in range(50)]


def test_epochs_reshuffle_and_state_resumes(shards: str) -> None:
    source = ParquetSource("p", [shards])
    a = ShardedStream([source], [None], seed=1, worker=0, num_workers=1)
    first, second = ids_of_epoch(a, 50), ids_of_epoch(a, 50)
    assert sorted(first) == sorted(second) and first != second and a.epoch == 1
    b = ShardedStream([source], [None], seed=1, worker=0, num_workers=1)
    ids_of_epoch(b, 37)
    state = b.state()
    c = ShardedStream([source], [None], seed=1, worker=0, num_workers=1)
    c.load_state(state)
    assert ids_of_epoch(c, 63) == (first + second)[37:100]


def test_caps_limit_rows_per_dataset(shards: str, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_parquet_shards(demo_records(9, kinds=("t2i",), seed=3), str(other), row_group_size=4)
    stream = ShardedStream([ParquetSource("a", [shards]), ParquetSource("b", [str(other)])], [13, None], seed=0,
                           worker=0, num_workers=1, shuffle=False)
    rows = [stream.next_row() for _ in range(22)]
    assert [r[1] for r in rows] == ["a"] * 13 + ["b"] * 9
    assert [r[0]["id"] for r in rows[:13]] == [f"text-{i:06d}" for i in range(13)]


def test_jsonl_blocks_images_and_conversion(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    records = demo_records(7, kinds=("edit",), seed=5)
    lines = []
    for r in records:
        for col in ("source_image", "target_image"):
            (tmp_path / "img" / f"{r['id']}_{col}.png").write_bytes(r[col])
            r[col] = f"img/{r['id']}_{col}.png"
        lines.append(json.dumps(r))
    lines.insert(3, "{broken")
    lines.insert(5, "")
    missing = dict(json.loads(lines[0]), id="missing", source_image="img/nope.png")
    lines.append(json.dumps(missing))
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")

    source = JsonlSource("j", [str(tmp_path / "data.jsonl")], block_rows=3)
    units = source.list_units()
    assert [u.num_rows for u in units] == [3, 3, 3]  # the empty line is not a row
    rows = [r for u in units for r in source.read_unit(u)]
    errors = [r.reason for r in rows if isinstance(r, SampleError)]
    assert errors == ["bad_json", "missing_image_file"]
    good = [r for r in rows if not isinstance(r, SampleError)]
    assert [r["id"] for r in good] == [r["id"] for r in records]
    assert good[0]["source_image"][:4] == b"\x89PNG"

    paths, skipped = jsonl_to_parquet([str(tmp_path / "data.jsonl")], str(tmp_path / "pq"), row_group_size=2)
    assert skipped == {"bad_json": 1, "missing_image_file": 1}
    table = pq.read_table(paths[0])
    assert table.num_rows == 7 and pq.ParquetFile(paths[0]).metadata.num_row_groups == 4
    assert table.column("source_image")[0].as_py() == good[0]["source_image"]
    assert not list(Path(tmp_path / "pq").glob("*.tmp"))


def test_column_mapping_and_default_kind(tmp_path: Path) -> None:
    table = pa.table({"src": [b"a"], "dst": [b"b"], "edit instruction": ["do it"]})
    pq.write_table(table, tmp_path / "hf.parquet")
    source = ParquetSource("hf", [str(tmp_path)], kind="edit",
                           columns={"source_image": "src", "target_image": "dst", "instruction": "edit instruction"})
    row = source.read_unit(source.list_units()[0])[0]
    assert row == {"source_image": b"a", "target_image": b"b", "instruction": "do it", "kind": "edit"}


def test_too_few_rows_for_workers_is_a_clear_error(shards: str) -> None:
    with pytest.raises(ValueError, match="fewer than the 64 data workers"):
        ShardedStream([ParquetSource("p", [shards])], [None], seed=0, worker=0, num_workers=64)


def test_jsonl_file_gone_before_listing_is_recorded_not_fatal(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in demo_records(3, kinds=("text",))]
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    source = JsonlSource("j", [str(tmp_path)])
    (tmp_path / "a.jsonl").unlink()  # removed between start-up and listing
    units = source.list_units()
    assert [(Path(u.path).name, u.num_rows) for u in units] == [("b.jsonl", 3)]
    assert source.unreadable == [str(tmp_path / "a.jsonl")]
