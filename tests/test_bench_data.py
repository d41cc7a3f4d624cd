"""Benchmark folders: loading with corrupt lines skipped and counted; converters from GEdit parquet, ImgEdit JSON
and CSV releases (small files made here); judge calibration numbers checked by hand."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inference.benchmark.calibration import calibrate, main as calibrate_main, pearson_r
from inference.benchmark.converters.csv_tasks import convert_csv_tasks
from inference.benchmark.converters.gedit import convert_gedit
from inference.benchmark.converters.imgedit import convert_imgedit
from inference.benchmark.schema import BenchmarkFormatError, load_benchmark, make_safe_id
from tests.test_bench_support import make_bench, solid


def png(colour) -> bytes:
    buf = io.BytesIO()
    solid(colour).save(buf, format="PNG")
    return buf.getvalue()


def test_loader_skips_and_counts_corrupt_lines(tmp_path):
    make_bench(tmp_path, [("a", "color", (1, 2, 3)), ("b", "style", (4, 5, 6))])
    good = (tmp_path / "samples.jsonl").read_text()
    bad = [
        "{not json",
        json.dumps({"id": "c", "source_image": "images/a.png", "instruction": "x"}),  # no category
        json.dumps({"id": "../d", "source_image": "images/a.png", "instruction": "x", "category": "k"}),
        json.dumps({"id": "e", "source_image": "images/missing.png", "instruction": "x", "category": "k"}),
        json.dumps({"id": "a", "source_image": "images/a.png", "instruction": "dup", "category": "k"}),
        json.dumps({"id": "f", "source_image": "images/a.png", "instruction": "x", "category": "k", "language": "de"}),
    ]
    (tmp_path / "samples.jsonl").write_text(good + "\n".join(bad) + "\n")
    bench = load_benchmark(tmp_path)
    assert [s.id for s in bench.samples] == ["a", "b"] and len(bench.skipped) == 6
    assert any("duplicate id a" in s for s in bench.skipped) and any("not found" in s for s in bench.skipped)
    assert bench.open_source(bench.samples[1]).getpixel((0, 0)) == (4, 5, 6)
    with pytest.raises(BenchmarkFormatError, match="download_bench"):
        load_benchmark(tmp_path / "nowhere")
    assert make_safe_id("daily object/0001.jpg") == "daily_object_0001.jpg"


def test_gedit_parquet_becomes_one_folder_per_language(tmp_path):
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    rows = {
        "key": ["k1", "k2", "k1", "k3"],
        "task_type": ["color_alter", "style_change", "color_alter", "style_change"],
        "instruction": ["make it red", "as a sketch", "把它变成红色", "broken"],
        "instruction_language": ["en", "en", "cn", "en"],
        "input_image": [{"bytes": png((200, 0, 0)), "path": "a.png"}, {"bytes": png((0, 200, 0)), "path": "b.png"},
                        {"bytes": png((200, 0, 0)), "path": "a.png"}, {"bytes": b"garbage", "path": "c.png"}],
        "input_image_raw": [None] * 4,
        "Intersection_exist": [True, False, True, False],
    }
    table = pa.table({k: pa.array(v, type=image_type) if k == "input_image" else pa.array(v) for k, v in rows.items()})
    pq.write_table(table, tmp_path / "train-00000.parquet")
    stats = convert_gedit([tmp_path / "train-00000.parquet"], tmp_path / "out")
    assert (stats["en"].written, len(stats["en"].skipped), stats["cn"].written) == (2, 1, 1)
    en, cn = load_benchmark(tmp_path / "out" / "gedit_en"), load_benchmark(tmp_path / "out" / "gedit_cn")
    assert [(s.id, s.category, s.reference["intersection"]) for s in en.samples] == [
        ("k1", "color_alter", True), ("k2", "style_change", False)]
    assert cn.samples[0].instruction == "把它变成红色" and cn.samples[0].language == "cn"
    assert en.open_source(en.samples[1]).getpixel((0, 0)) == (0, 200, 0)


def test_imgedit_conversion_copies_prompts_and_maps_edit_type_aliases(tmp_path):
    (tmp_path / "animal").mkdir()
    solid((1, 1, 1)).save(tmp_path / "animal" / "001.jpg")
    meta = {"7": {"id": "animal/001.jpg", "prompt": "Replace the dog with a cat.", "edit_type": "replace"},
            "8": {"id": "animal/001.jpg", "prompt": "Make the fur darker.", "edit_type": "alter"},
            "9": {"id": "animal/404.jpg", "prompt": "Remove it.", "edit_type": "remove"},
            "10": {"id": "animal/001.jpg", "prompt": "Hmm.", "edit_type": "unknown"}}
    prompts = {"replace": "Judge <edit_prompt>", "adjust": "Judge adjust <edit_prompt>", "remove": "R <edit_prompt>"}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    stats = convert_imgedit(tmp_path / "meta.json", tmp_path, tmp_path / "prompts.json", tmp_path / "out")
    assert stats.written == 2 and len(stats.skipped) == 2
    bench = load_benchmark(tmp_path / "out")
    assert [(s.id, s.category) for s in bench.samples] == [("7", "replace"), ("8", "adjust")]
    assert bench.samples[1].reference["orig_edit_type"] == "alter"
    assert bench.judge_prompts == {"imgedit": prompts}


def test_csv_conversion_finds_columns_and_uses_file_names_as_categories(tmp_path):
    solid((9, 9, 9)).save(tmp_path / "cat.png")
    with open(tmp_path / "camera_motion.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Image_Path", "Prompt", "note"])
        writer.writerow(["cat.png", "Rotate the view 30 degrees left.", "n1"])
        writer.writerow(["missing.png", "Zoom in.", "n2"])
    with open(tmp_path / "bad.csv", "w", newline="") as f:
        csv.writer(f).writerow(["picture", "words"])
    stats = convert_csv_tasks([tmp_path / "camera_motion.csv"], tmp_path / "out")
    assert stats.written == 1 and "missing.png" in stats.skipped[0]
    sample = load_benchmark(tmp_path / "out").samples[0]
    assert (sample.id, sample.category, sample.reference) == ("camera_motion_1", "camera_motion", {"note": "n1"})
    with pytest.raises(ValueError, match="--column"):
        convert_csv_tasks([tmp_path / "bad.csv"], tmp_path / "out2")
    explicit = convert_csv_tasks([tmp_path / "bad.csv"], tmp_path / "out3", columns={"image": "picture",
                                                                                      "instruction": "words"})
    assert explicit.written == 0


def test_calibration_numbers_by_hand(tmp_path, capsys):
    # judge = human / 2 + 0: perfectly correlated; |differences| = 1, 2, 3, 4 -> MAE 2.5 (on the target)
    perfect = calibrate([1, 2, 3, 4], [2, 4, 6, 8])
    assert perfect.pearson_r == pytest.approx(1.0) and perfect.mae == pytest.approx(2.5) and perfect.passes
    # x = [1, 2, 3], y = [1, 3, 2]: sxy = 1, sxx = syy = 2 -> r = 0.5; MAE = (0 + 1 + 1) / 3
    weak = calibrate([1, 2, 3], [1, 3, 2])
    assert weak.pearson_r == pytest.approx(0.5) and weak.mae == pytest.approx(2 / 3) and not weak.passes
    assert pearson_r([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="variance"):
        pearson_r([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="pair"):
        calibrate([1, 2, 3], [1, 2])

    rows = [{"id": i, "scorer": "viescore", "status": "ok", "overall": v, "subscores": {"SC": v + 1}}
            for i, v in (("a", 2.0), ("b", 5.0), ("c", 8.0))]
    rows.append({"id": "d", "scorer": "viescore", "status": "parse_fail", "overall": None, "subscores": {}})
    (tmp_path / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "human.csv").write_text("id,score\na,3\nb,5\nc,9\nd,1\n")
    # paired: (2,3), (5,5), (8,9): MAE = 2/3; dx = -3,0,3, dy = -8/3,-2/3,10/3 -> sxy = 18, sxx = 18, syy = 56/3
    assert calibrate_main(["--scores", str(tmp_path / "scores.jsonl"), "--human", str(tmp_path / "human.csv"),
                           "--min-samples", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 3 and printed["passes"] is True
    assert printed["pearson_r"] == pytest.approx(18 / (18 * 56 / 3) ** 0.5) and printed["mae"] == pytest.approx(2 / 3)
    # SC = overall + 1 matches human except b: |3-3|+|6-5|+|9-9| -> MAE 1/3
    assert calibrate_main(["--scores", str(tmp_path / "scores.jsonl"), "--human", str(tmp_path / "human.csv"),
                           "--field", "SC", "--min-samples", "3"]) == 0
