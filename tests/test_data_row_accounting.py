"""No row lost without a count: over random datasets of good, empty, truncated and corrupt parquet and JSONL shards,
each row on disk is delivered once per epoch (over all data workers) or counted as skipped with its reason.

The rule (``data/mix_stream.py``): rows of shards whose structure can be listed are delivered or counted per row; a
shard that cannot be listed at all (a truncated parquet footer) is counted once as ``unlistable_shard``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.dataset_info import DATASET_INFO, DatasetInfo, register_dataset
from data.demo_records import BYTE_SPECIAL_TOKENS, ByteTokenizer, demo_records, random_image_bytes
from data.mix_config import parse_mix
from data.mix_stream import MixWorkerStream
from data.packing import SpecialTokens
from data.parquet_writer import SCHEMA, write_parquet_shards
from data.skip_counters import NoUsableSampleError

PARQUET_SHARDS = ("good", "empty", "truncated", "corrupt_row_group", "bad_rows")
JSONL_SHARDS = ("good", "empty", "truncated_last_line", "garbage_lines", "missing_images")


@dataclass
class Expected:
    """What a dataset holds on disk, as written: good row ids, skip counts per reason, unlistable shards."""

    good: set[str] = field(default_factory=set)
    reasons: Counter = field(default_factory=Counter)
    unlistable: int = 0

    @property
    def rows(self) -> int:
        """Rows on disk in the shards that can be listed."""
        return len(self.good) + sum(self.reasons.values())


def text_rows(name: str, shard: int, n: int) -> list[dict]:
    rows = demo_records(n, kinds=("text",), seed=shard)
    for i, row in enumerate(rows):
        row["id"] = f"{name}-{shard}-{i}"
    return rows


def corrupt_row_group(path: Path, group: int) -> int:
    """Overwrites the first page header of a row group (the footer stays valid); returns the group's row count."""
    meta = pq.ParquetFile(path).metadata
    column = meta.row_group(group).column(0)
    start = column.dictionary_page_offset if column.has_dictionary_page else column.data_page_offset
    data = bytearray(path.read_bytes())
    data[start:start + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    return meta.row_group(group).num_rows


def write_parquet_dataset(root: Path, name: str, kinds: list[str], rng: np.random.Generator) -> Expected:
    expected = Expected()
    root.mkdir(parents=True)
    for shard, kind in enumerate(kinds):
        path = root / f"s{shard}-00000.parquet"
        if kind == "empty":  # a valid footer over zero rows
            pq.write_table(pa.table({c: pa.array([], t) for c, t in zip(SCHEMA.names, SCHEMA.types)}), path)
            continue
        rows = text_rows(name, shard, int(rng.integers(3, 10)))
        if kind == "bad_rows":
            for row in rows[1::2]:
                row["conversation"] = "[not json"
                expected.reasons["bad_conversation"] += 1
        group_size = 3
        write_parquet_shards(rows, str(root), rows_per_shard=len(rows), row_group_size=group_size, prefix=f"s{shard}")
        if kind == "truncated":  # the footer is gone: the shard cannot be listed, its rows are unknown
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            expected.unlistable += 1
            continue
        broken: set[int] = set()
        if kind == "corrupt_row_group":
            group = int(rng.integers(0, pq.ParquetFile(path).metadata.num_row_groups))
            expected.reasons["unreadable_shard"] += corrupt_row_group(path, group)
            broken = set(range(group * group_size, (group + 1) * group_size))
        expected.good |= {r["id"] for i, r in enumerate(rows)
                          if i not in broken and not (kind == "bad_rows" and i % 2 == 1)}
    return expected


def write_jsonl_dataset(root: Path, name: str, kinds: list[str], rng: np.random.Generator) -> Expected:
    expected = Expected()
    (root / "img").mkdir(parents=True)
    for shard, kind in enumerate(kinds):
        lines = []
        for i in range(0 if kind == "empty" else int(rng.integers(3, 10))):
            row_id = f"{name}-{shard}-{i}"
            image = f"img/{row_id}.png"
            if kind == "missing_images" and i % 2 == 0:
                image = f"img/{row_id}-never-written.png"
                expected.reasons["missing_image_file"] += 1
            else:
                (root / image).write_bytes(random_image_bytes(rng, 24, 24))
                expected.good.add(row_id)
            lines.append(json.dumps({"id": row_id, "kind": "t2i", "instruction": f"picture {i}",
                                     "target_image": image}))
        if kind == "garbage_lines":
            lines[1:1] = ["{oops", "[1, 2, 3]"]
            expected.reasons["bad_json"] += 2
        text = "\n".join(lines) + ("\n" if lines else "\n\n")  # an empty shard: blank lines only
        if kind == "truncated_last_line":  # a writer killed mid-line
            last = json.loads(lines[-1])["id"]
            expected.good.discard(last)
            expected.reasons["bad_json"] += 1
            text = text[: -len(lines[-1]) // 2]
        (root / f"s{shard}.jsonl").write_text(text)
    return expected


def random_datasets(root: Path, seed: int) -> tuple[dict[str, DatasetInfo], dict[str, Expected]]:
    rng = np.random.default_rng(seed)
    infos, expected = {}, {}
    for d, fmt in enumerate(("parquet", "jsonl", "parquet" if seed % 2 else "jsonl")):
        name = f"acct_{seed}_{d}_{fmt}"
        menu = PARQUET_SHARDS if fmt == "parquet" else JSONL_SHARDS
        kinds = ["empty"] + [str(k) for k in rng.choice(menu, size=int(rng.integers(2, 5)))]  # empty listed first
        kinds.insert(int(rng.integers(1, len(kinds) + 1)), "good")  # at least one good shard
        writer = write_parquet_dataset if fmt == "parquet" else write_jsonl_dataset
        expected[name] = writer(root / name, name, kinds, rng)
        infos[name] = DatasetInfo(name, fmt, (str(root / name / f"*.{fmt}"),))
    return infos, expected


def one_epoch(infos: dict[str, DatasetInfo], num_workers: int) -> tuple[Counter, dict[str, Counter], Counter]:
    """Per dataset over all workers' first epoch: delivered sample ids, skip counts per reason, unlistable shards."""
    for info in infos.values():
        register_dataset(info, overwrite=True)
    try:
        mix = parse_mix({
            "max_consecutive_skips": 200,  # > 2 epochs of any worker's share
            "tokens": {"expected_num_tokens": 4096, "max_num_tokens": 4096, "max_num_tokens_per_sample": 4096},
            "packing": {"vit_max_num_patch_per_side": 16, "max_latent_size": 16},
            "groups": {"all": {"datasets": list(infos), "weight": 1.0,
                               "vae_transform": [64, 32, 16], "vit_transform": [56, 28, 14]}},
        })
    finally:
        for name in infos:
            DATASET_INFO.pop(name)
    delivered: Counter = Counter()
    skipped: dict[str, Counter] = {name: Counter() for name in infos}
    unlistable: Counter = Counter()
    for worker in range(num_workers):
        stream = MixWorkerStream(mix, ByteTokenizer(), SpecialTokens.from_dict(BYTE_SPECIAL_TOKENS), worker,
                                 num_workers)
        for name, reasons in stream.counters.state().items():  # counted at listing, by worker 0 only
            unlistable[name] += reasons.pop("unlistable_shard", 0)
            assert not reasons
        rows = stream.streams[0]
        assert rows.by_unit == (len(rows.catalog) >= num_workers)
        count = stream.counters.add

        def add(dataset: str, reason: str, detail: str = "", where: str = "") -> None:
            if rows.epoch == 0:  # the epoch of the row just read
                skipped[dataset][reason] += 1
            count(dataset, reason, detail, where)

        stream.counters.add = add
        while True:
            try:
                sample, _ = stream.next_sample()
            except NoUsableSampleError:  # split by rows, a worker's fixed share can hold no good row at all
                assert rows.epoch > 1  # only after whole epochs without one
                break
            if rows.epoch > 0:
                break
            delivered[sample.sample_id] += 1
    return delivered, skipped, unlistable


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("num_workers", [1, 3, 40])  # 40 > read units: the split by rows
def test_every_row_is_delivered_once_or_counted(tmp_path: Path, seed: int, num_workers: int, caplog) -> None:
    caplog.set_level(logging.ERROR)
    infos, expected = random_datasets(tmp_path, seed)
    delivered, skipped, unlistable = one_epoch(infos, num_workers)
    assert max(delivered.values()) == 1  # no row twice in one epoch, whatever the split over workers
    for name, want in expected.items():
        mine = {sid for sid in delivered if sid.startswith(f"{name}-")}
        assert len(mine) + sum(skipped[name].values()) == want.rows, name  # the invariant
        assert mine == want.good, name
        assert skipped[name] == want.reasons, name
        assert unlistable[name] == want.unlistable, name


def test_empty_shard_listed_first_hides_no_rows(tmp_path: Path) -> None:
    """The reported case: a 0-row parquet shard before good shards of the same dataset."""
    root = tmp_path / "ds"
    root.mkdir()
    pq.write_table(pa.table({c: pa.array([], t) for c, t in zip(SCHEMA.names, SCHEMA.types)}),
                   root / "a-00000.parquet")
    write_parquet_shards(text_rows("ds", 1, 5), str(root), prefix="b")
    write_parquet_shards(text_rows("ds", 2, 4), str(root), prefix="c")
    delivered, skipped, _ = one_epoch({"ds": DatasetInfo("ds", "parquet", (str(root),))}, 1)
    assert sorted(delivered) == sorted([f"ds-1-{i}" for i in range(5)] + [f"ds-2-{i}" for i in range(4)])
    assert skipped == {"ds": Counter()}
