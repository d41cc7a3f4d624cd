"""scripts/check_reward.py: degenerate edits (blank, noise, source, blur) against real edits, table and verdict."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
from PIL import Image

from data.shapes_edit.export import write_benchmark
from inference.benchmark.files import atomic_write_json
from inference.benchmark.layout import RunLayout
from scripts.check_reward import main
from tests.test_bench_support import make_bench, solid
from train.rl.rewards.base import RewardResult
from train.rl.rewards.check import DEGENERATE_KINDS, KINDS, check_reward, load_cases


class Brightness:
    """Mean pixel value on 0-10, so white (blank) scores highest; records what it was asked."""

    name = "programmatic"

    def __init__(self, drop_every: int = 0):
        self.requests, self.drop_every = [], drop_every

    def __call__(self, requests):
        self.requests.extend(requests)
        return [RewardResult(None, error="brightness error: dropped") if self.drop_every and i % self.drop_every == 0
                else RewardResult(float(np.asarray(r.edited_image, dtype=np.float64).mean() / 25.5))
                for i, r in enumerate(requests)]


@pytest.fixture
def brightness(monkeypatch):
    """Registers Brightness as the 'programmatic' reward (the registry imports it lazily by module name)."""
    made = []

    def factory(drop_every: int = 0):
        made.append(Brightness(drop_every))
        return made[-1]

    module = types.ModuleType("train.rl.rewards.programmatic")
    module.ProgrammaticReward = factory
    monkeypatch.setitem(sys.modules, "train.rl.rewards.programmatic", module)
    return made


def run_with_edits(tmp_path, spec):
    """A generic benchmark (no target images) and an evaluation run whose images/CoTs are the real edits."""
    make_bench(tmp_path / "bench", spec)
    layout = RunLayout(tmp_path / "run")
    for sample_id, _, colour in spec:
        layout.image(sample_id).parent.mkdir(parents=True, exist_ok=True)
        solid(tuple(c // 2 for c in colour)).save(layout.image(sample_id))
        atomic_write_json(layout.gen_record(sample_id), {"cot_text": f"<think>plan {sample_id}</think>"})
    return tmp_path / "bench", tmp_path / "run"


def test_report_arithmetic_and_verdict_with_a_degenerate_favouring_reward(tmp_path, brightness, capsys):
    bench, run = run_with_edits(tmp_path, [("a", "c", (100, 120, 140)), ("b", "c", (60, 60, 60)),
                                           ("c", "c", (200, 10, 30))])
    out = tmp_path / "check.json"
    assert main(["--bench-dir", str(bench), "--edits", str(run), "--reward", "programmatic",
                 "--settings", '{"drop_every": 4}', "--out", str(out)]) == 1
    table = capsys.readouterr().out
    reward = brightness[0]
    # every sample asked once per kind, with its run CoT, in one batch
    assert [r.sample_id for r in reward.requests] == [f"{s}/{k}" for s in "abc" for k in KINDS]
    assert {r.cot_text for r in reward.requests if r.sample_id.startswith("a/")} == {"<think>plan a</think>"}
    # recompute the means from what the reward was given (every 4th request dropped)
    expected: dict[str, list[float]] = {k: [] for k in KINDS}
    for i, r in enumerate(reward.requests):
        if i % 4:
            expected[r.sample_id.split("/")[1]].append(np.asarray(r.edited_image, dtype=np.float64).mean() / 25.5)
    summary = json.loads(out.read_text())
    for kind in KINDS:
        assert summary["kinds"][kind]["mean"] == pytest.approx(np.mean(expected[kind]))
        assert summary["kinds"][kind]["scored"] == len(expected[kind])
        assert summary["kinds"][kind]["dropped"] == 3 - len(expected[kind])
    real = summary["kinds"]["real"]["mean"]
    assert summary["flagged"] == [k for k in DEGENERATE_KINDS if summary["kinds"][k]["mean"] >= real]
    assert "blank" in summary["flagged"] and summary["passes"] is False  # white is the brightest image
    blank_line = next(line for line in table.splitlines() if line.startswith("blank"))
    blank = summary["kinds"]["blank"]
    assert blank_line.split()[1:4] == [str(blank["scored"]), str(blank["dropped"]), f"{blank['mean']:.3f}"]
    assert blank_line.endswith("FLAGGED") and "FAIL: blank" in table
    # with a margin, kinds scoring below the real edits but within the margin are flagged too
    assert main(["--bench-dir", str(bench), "--edits", str(run), "--reward", "programmatic", "--margin", "10",
                 "--out", str(out)]) == 1
    assert json.loads(out.read_text())["flagged"] == list(DEGENERATE_KINDS)


def test_degenerate_images_are_what_they_claim(tmp_path):
    bench, run = run_with_edits(tmp_path, [("a", "c", (100, 120, 140))])
    cases, skipped = load_cases(bench, run)
    reward = Brightness()
    check_reward(reward, cases, seed=1)
    images = {r.sample_id.split("/")[1]: np.asarray(r.edited_image, dtype=np.int64) for r in reward.requests}
    assert skipped == [] and (images["real"] == (50, 60, 70)).all()
    assert (images["blank"] == 255).all() and (images["source"] == (100, 120, 140)).all()
    assert images["noise"].std() > 60 and abs(images["noise"].mean() - 127.5) < 10
    assert (images["blur"] == (50, 60, 70)).all()  # a uniform edit stays itself under blur


def test_shapes_exact_on_a_generated_shapes_benchmark(tmp_path, capsys):
    write_benchmark(tmp_path / "bench", per_category=1, seed=0, size=128)
    out = tmp_path / "check.json"
    code = main(["--bench-dir", str(tmp_path / "bench"), "--reward", "shapes_exact", "--limit", "4",
                 "--out", str(out)])
    summary = json.loads(out.read_text())
    kinds = summary["kinds"]
    # the reference targets with the reference CoTs are perfect edits; the unedited source is not
    assert kinds["real"]["mean"] == 10.0 and kinds["real"]["scored"] == 4
    assert kinds["source"]["mean"] < kinds["real"]["mean"]
    # the verdict is the arithmetic of the table (a fixed exact judge, branch i17, gives the degenerate kinds ~0;
    # the judge of this branch may still flag some, which the tool must then report)
    flagged = [k for k in DEGENERATE_KINDS if kinds[k]["mean"] >= kinds["real"]["mean"]]
    assert summary["flagged"] == flagged and code == (1 if flagged else 0)
    assert ("PASS" in capsys.readouterr().out) == (not flagged)


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    make_bench(tmp_path / "bench", [("a", "c", (1, 2, 3))])
    assert main(["--bench-dir", str(tmp_path / "bench"), "--reward", "shapes_exact"]) == 2
    assert "no reference target image; pass an evaluation run folder" in capsys.readouterr().err
    assert main(["--bench-dir", str(tmp_path / "bench"), "--reward", "shapes_exact",
                 "--settings", '{"dim": 1}']) == 2
    assert "unknown setting(s) ['dim']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--bench-dir", str(tmp_path / "bench"), "--reward", "cec", "--settings", "{oops"])
    assert exit_info.value.code == 2 and "--settings is not JSON" in capsys.readouterr().err
    config = tmp_path / "rl.yaml"
    config.write_text("reward:\n  kind: shapes_exact\n  settings: {dimension: overall}\n")
    assert main(["--bench-dir", str(tmp_path / "bench"), "--config", str(config)]) == 2  # config read, no targets
    assert "no reference target image" in capsys.readouterr().err
