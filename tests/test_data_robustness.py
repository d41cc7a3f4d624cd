"""A deliberately damaged dataset: bad rows and shards are skipped and counted per dataset and reason; a mix in
which nothing fits stops with one line instead of looping, and skip logging stays bounded."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from data.dataset_info import DATASET_INFO, DatasetInfo, register_dataset
from data.demo_records import BYTE_SPECIAL_TOKENS, ByteTokenizer, demo_records
from data.mix_config import parse_mix
from data.mix_stream import MixWorkerStream
from data.packing import SpecialTokens
from data.parquet_writer import write_parquet_shards
from data.skip_counters import NoUsableSampleError, SkipCounters


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
    expected = {"unlistable_shard": 1,  # the shard whose footer could not be read when listing
                "corrupt_image": 2, "missing_field": 1, "bad_cot": 1, "bad_conversation": 1, "too_long": 1}
    assert stream.counters.state() == {"damaged": expected}
    # shard b vanished after listing: its 3 rows are counted, and the run goes on into the next epoch
    assert stream.next_sample()[0].sample_id == "edit-000000" and stream.streams[0].epoch == 1
    assert stream.counters.state() == {"damaged": dict(expected, unreadable_shard=3)}


def test_no_sample_fits_stops_with_one_line_and_bounded_logs(tmp_path: Path, caplog) -> None:
    rows = demo_records(7, kinds=("text",), seed=1)
    for i, row in enumerate(rows):  # 500 or 750 bytes + "ok": ByteTokenizer gives one token a byte, + BOS/EOS a turn
        turns = [{"role": "user", "text": "long " * (100 if i % 2 else 150)}, {"role": "assistant", "text": "ok"}]
        row["conversation"] = json.dumps(turns)
    rows[3]["conversation"] = "[broken"
    write_parquet_shards(rows, str(tmp_path / "long"), row_group_size=2)
    register_dataset(DatasetInfo("all_too_long", "parquet", (str(tmp_path / "long"),)), overwrite=True)
    try:
        mix = parse_mix({
            "tokens": {"expected_num_tokens": 300, "max_num_tokens": 300, "max_num_tokens_per_sample": 300},
            "groups": {"g": {"datasets": ["all_too_long"], "weight": 1.0,
                             "vae_transform": [64, 32, 16], "vit_transform": [56, 28, 14]}},
        })
    finally:
        DATASET_INFO.pop("all_too_long")
    stream = MixWorkerStream(mix, ByteTokenizer(), SpecialTokens.from_dict(BYTE_SPECIAL_TOKENS), 0, 1)
    caplog.set_level(logging.INFO)
    with pytest.raises(NoUsableSampleError) as info:
        stream.next_sample()
    message = info.value.line
    assert message == str(info.value) and "\n" not in message
    assert message.startswith("data worker 0 of 1: no usable sample in 5000 consecutive rows of datasets "
                              "[all_too_long] (skipped: too_long 4286, bad_conversation 714)")  # 5000 = 714 x 7 + 2
    assert "samples had 506..756 tokens, tokens.max_num_tokens_per_sample is 300" in message
    assert stream.counters.state() == {"all_too_long": {"too_long": 4286, "bad_conversation": 714}}
    skip_lines = [r for r in caplog.records if r.name == "data.skip_counters"]
    assert len(skip_lines) == 2  # the first skip of each reason; totals only every 60 s


def test_skip_totals_are_logged_at_intervals(caplog) -> None:
    now = [0.0]
    counters = SkipCounters(log_every_s=10.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING)
    for i in range(100):
        now[0] = i * 0.5  # 100 skips over 50 s
        counters.add("d", "too_long" if i % 4 else "corrupt_image", "detail", f"f:0:{i}")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 + 4  # two first-of-reason lines, then totals at 10, 20, 30, 40 s
    assert lines[-1].startswith("skipped rows so far (20 new): d: corrupt_image 21, too_long 60")
