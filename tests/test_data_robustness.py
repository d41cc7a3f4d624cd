"""A deliberately damaged dataset: bad rows and shards are skipped and counted per dataset and reason."""

from __future__ import annotations

import json
import os
from pathlib import Path

from data.dataset_info import DATASET_INFO, DatasetInfo, register_dataset
from data.demo_records import BYTE_SPECIAL_TOKENS, ByteTokenizer, demo_records
from data.mix_config import parse_mix
from data.mix_stream import MixWorkerStream
from data.packing import SpecialTokens
from data.parquet_writer import write_parquet_shards


def damaged_rows() -> list[dict]:
    rows = demo_records(12, kinds=("edit", "edit_cot", "understanding"), seed=3)
    # kinds cycle edit, edit_cot, understanding
    rows[1]["source_image"] = rows[1]["source_image"][:80]  # truncated PNG
    rows[2]["source_image"] = b"\x00garbage"  # not an image
    rows[4]["instruction"] = None  # missing field
    rows[5]["conversation"] = json.dumps([{"role": "user", "text": "no answer"}])
    rows[7]["cot"] = "Task: a\nTarget: b\nUnderstanding ability: c\nStep 1 - Meta-task summary: Teleport. x"  # bad CoT
    rows[8]["conversation"] = json.dumps([{"role": "user", "text": "long " * 500}, {"role": "assistant", "text": "ok"}])
    return rows  # rows 0, 3, 6, 9, 10, 11 are good (row 11 last, so one pass reaches every bad row)


def test_bad_rows_and_shards_are_counted_and_skipped(tmp_path: Path) -> None:
    root = tmp_path / "damaged"
    write_parquet_shards(damaged_rows(), str(root), rows_per_shard=12, prefix="a")
    write_parquet_shards(demo_records(3, kinds=("edit",), seed=9), str(root), prefix="b")  # deleted after listing
    (root / "c-00000.parquet").write_bytes(b"PAR1 this is not parquet")  # unreadable footer
    register_dataset(DatasetInfo("damaged", "parquet", (str(root),)), overwrite=True)
    try:
        mix = parse_mix({
            "tokens": {"expected_num_tokens": 2000, "max_num_tokens": 2000, "max_num_tokens_per_sample": 2000},
            "packing": {"vit_max_num_patch_per_side": 16, "max_latent_size": 16},
            "groups": {"g": {"datasets": ["damaged"], "weight": 1.0, "shuffle": False,
                             "vae_transform": [64, 32, 16], "vit_transform": [56, 28, 14]}},
        })
    finally:
        DATASET_INFO.pop("damaged")
    stream = MixWorkerStream(mix, ByteTokenizer(), SpecialTokens.from_dict(BYTE_SPECIAL_TOKENS), 0, 1)
    os.remove(root / "b-00000.parquet")

    good = [stream.next_sample()[0].sample_id for _ in range(6)]
    assert good == ["edit-000000", "edit-000003", "edit-000006", "edit-000009", "edit_cot-000010",
                    "understanding-000011"]
    expected = {"unreadable_shard": 1,  # the footer that could not be read when listing
                "corrupt_image": 2, "missing_field": 1, "bad_cot": 1, "bad_conversation": 1, "too_long": 1}
    assert stream.counters.state() == {"damaged": expected}
    # shard b vanished after listing: its 3 rows are counted, and the run goes on into the next epoch
    assert stream.next_sample()[0].sample_id == "edit-000000" and stream.streams[0].epoch == 1
    assert stream.counters.state() == {"damaged": dict(expected, unreadable_shard=4)}
