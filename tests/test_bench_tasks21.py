"""21-Tasks-Bench: the fixed category list, its spellings, the converter's check, reports in the fixed order, and
``eval_benchmark.py`` with no arguments (its defaults, its one-line errors, no run folder left by a failure)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

import inference.benchmark.benchmarks as benchmarks
import modeling.bagel.hub as hub
import tests.test_bench_support as support
from inference.benchmark.tasks21_categories import (CATEGORIES, CATEGORY_NAMES, CategoryMismatch,
                                                    canonical_category, check_categories)
from inference.eval_benchmark import main as eval_main
from scripts.bench_data.convert_21tasks import main as convert_main
from tests.test_bench_support import make_bench

GEDIT_TASK_TYPES = {"background_change", "color_alter", "material_alter", "motion_change", "ps_human", "style_change",
                    "subject-add", "subject-remove", "subject-replace", "text_change", "tone_transfer"}


def test_the_fixed_list_has_the_papers_composition():
    assert len(CATEGORY_NAMES) == len(set(CATEGORY_NAMES)) == 21
    assert Counter(c.source for c in CATEGORIES) == {"GEdit-Bench": 11, "RISEBench": 4, "Complex-Edit": 1,
                                                     "new (unverified name)": 5}
    assert {c.name for c in CATEGORIES if c.source == "GEdit-Bench"} == GEDIT_TASK_TYPES


@pytest.mark.parametrize(("name", "ours"), [
    ("subject-add", "subject-add"), ("Subject_Add", "subject-add"), ("PS Human", "ps_human"),
    ("temporal", "temporal_reasoning"), ("Logical Reasoning", "logical_reasoning"),
    ("complex-edit", "multi_instruction"), ("camera view change", "camera_motion"), ("count", "count_change"),
    ("cooking", None)])
def test_other_spellings_map_onto_the_fixed_names(name, ours):
    assert canonical_category(name) == ours
    assert canonical_category("cooking", {"cooking": "open_close"}) == "open_close"


def test_check_names_unknown_and_missing():
    check_categories(CATEGORY_NAMES)
    with pytest.raises(CategoryMismatch) as caught:
        check_categories([*CATEGORY_NAMES[1:], "cooking"])
    message = str(caught.value)
    assert "unknown ['cooking']" in message and "missing ['background_change']" in message and "\n" not in message
    check_categories([*CATEGORY_NAMES, "cooking"], allow_extra=True)


def release_csvs(folder: Path, names: list[str]) -> Path:
    """One CSV per category, named as a release might spell it, one row each, with its image."""
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        Image.new("RGB", (24, 16), (i * 10, 0, 0)).save(folder / f"{i}.png")
        with open(folder / f"{name}.csv", "w", newline="") as f:
            csv.writer(f).writerows([["image", "instruction"], [f"{i}.png", f"edit number {i}"]])
    return folder


def release_spellings() -> list[str]:
    return [n.replace("-", "_").title() if n in GEDIT_TASK_TYPES else n.removesuffix("_reasoning") for n in
            CATEGORY_NAMES]


def test_converter_maps_spellings_and_refuses_unknown_ones(tmp_path, capsys):
    csvs = release_csvs(tmp_path / "release", [*release_spellings(), "cooking"])
    out = tmp_path / "bench"
    assert convert_main(["--csv-dir", str(csvs), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown ['cooking']" in err and "--allow-extra-categories" in err
    assert not out.exists()  # checked before anything is written

    assert convert_main(["--csv-dir", str(csvs), "--out", str(out), "--category-map", "cooking=open_close"]) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert Counter(r["category"] for r in rows) == Counter({**dict.fromkeys(CATEGORY_NAMES, 1), "open_close": 2})

    assert convert_main(["--csv-dir", str(csvs), "--out", str(tmp_path / "extra"), "--allow-extra-categories"]) == 0
    assert len({json.loads(line)["category"] for line in (tmp_path / "extra/samples.jsonl").open()}) == 22


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repository root with an empty ckpts/ and data/bench/, a separate working directory, a recording editor."""
    monkeypatch.setattr(benchmarks, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setattr(hub, "CKPTS_DIR", tmp_path / "repo" / "ckpts")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    built = []
    monkeypatch.setattr(support, "make_fake_editor", lambda path, device, dtype: built.append(path) or
                        support.FakeEditor())
    return tmp_path / "repo", built


FAKE = ["--editor-factory", "tests.test_bench_support:make_fake_editor", "--no-progress"]


def bench_21(folder: Path, categories=CATEGORY_NAMES) -> None:
    make_bench(folder, [(f"s{i}", c, (i * 10, 5, 5)) for i, c in enumerate(reversed(categories))])


def test_no_arguments_evaluates_ckpts_metacot_on_the_default_folder(repo, capsys):
    root, built = repo
    bench_21(root / "data" / "bench" / "21tasks")
    (root / "ckpts" / "metacot").mkdir(parents=True)
    (root / "ckpts" / "metacot" / "llm_config.json").write_text("{}")
    assert eval_main([*FAKE, "--stages", "generate,report"]) == 0
    assert built == [str(root / "ckpts" / "metacot")]
    run = Path("runs/eval/21tasks_metacot")
    with open(run / "per_category.csv", newline="") as f:
        listed = [row["category"] for row in csv.DictReader(f)]
    assert listed == [*CATEGORY_NAMES, "ALL (macro)", "ALL (micro)"]  # the fixed order, not the file's
    report = (run / "summary.md").read_text()
    positions = [report.index(f"| {name} |") for name in CATEGORY_NAMES]
    assert positions == sorted(positions)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_missing_benchmark_folder_is_one_line(repo, capsys):
    assert eval_main(FAKE) == 2
    assert "has no samples.jsonl; fetch it with `bash scripts/download_bench.sh 21tasks`" in one_line_error(capsys)
    assert not Path("runs").exists()


def test_missing_model_is_one_line_and_leaves_no_run_folder(repo, capsys):
    root, _ = repo
    bench_21(root / "data" / "bench" / "21tasks")
    assert eval_main(FAKE) == 2
    assert "21 samples still need generating and no model is given" in one_line_error(capsys)
    assert not Path("runs").exists()


def test_unloadable_model_leaves_no_run_folder(repo, capsys, tmp_path):
    root, _ = repo
    bench_21(root / "data" / "bench" / "21tasks")
    assert eval_main(["--model-path", str(tmp_path / "nomodel"), "--device", "cpu", "--no-progress"]) == 2
    assert "nomodel" in one_line_error(capsys)
    assert not Path("runs").exists()


def test_categories_outside_the_list_are_refused_unless_allowed(repo, capsys):
    root, built = repo
    bench = root / "data" / "bench" / "21tasks"
    bench_21(bench, (*CATEGORY_NAMES, "cooking"))
    args = [*FAKE, "--model-path", "m", "--stages", "generate"]
    assert eval_main(args) == 2
    assert "unknown ['cooking']" in one_line_error(capsys) and not Path("runs").exists()
    assert eval_main([*args, "--allow-extra-categories"]) == 0 and built == ["m"]
