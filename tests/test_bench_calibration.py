"""Judge calibration: Spearman's rho, the minimum sample count of a certification, and the scatter plot."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from inference.benchmark.calibration import calibrate, main, scatter_png


def write_run(tmp_path, pairs):
    rows = [{"id": f"s{i}", "scorer": "cec", "status": "ok", "overall": j, "subscores": {}}
            for i, (j, _) in enumerate(pairs)]
    (tmp_path / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "human.csv").write_text("id,score\n" + "".join(f"s{i},{h}\n" for i, (_, h) in enumerate(pairs)))
    return ["--scores", str(tmp_path / "scores.jsonl"), "--human", str(tmp_path / "human.csv")]


def test_spearman_by_hand():
    # ranks of x = 1..5; y = [2, 1, 4, 3, 5] -> d = [-1, 1, -1, 1, 0], sum d^2 = 4, rho = 1 - 6*4/(5*24) = 0.8
    result = calibrate([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert result.spearman_rho == pytest.approx(0.8)
    # a monotone but non-linear relation: rho is exactly 1, Pearson r is below 1
    curved = calibrate([1, 2, 3, 4], [1, 4, 9, 16])
    assert curved.spearman_rho == pytest.approx(1.0) and curved.pearson_r < 0.99


def test_too_few_samples_are_not_certified_but_statistics_are_printed(tmp_path, capsys):
    pairs = [(h + 0.5, h) for h in (1, 3, 5, 7, 9, 2, 4, 6)]  # r = 1, MAE = 0.5: the targets are met
    args = write_run(tmp_path, pairs)
    assert main(args) == 1  # default --min-samples 500
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["n"] == 8 and printed["passes"] is True and printed["certified"] is False
    assert printed["pearson_r"] == pytest.approx(1.0) and printed["mae"] == pytest.approx(0.5)
    assert "8 paired samples < --min-samples 500" in captured.err
    assert main(args + ["--min-samples", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["certified"] is True


def test_enough_samples_that_miss_the_targets_are_not_certified(tmp_path, capsys):
    pairs = [(h, 10 - h) for h in (0, 2, 4, 6, 8, 10)]  # perfectly anti-correlated
    assert main(write_run(tmp_path, pairs) + ["--min-samples", "6"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["spearman_rho"] == pytest.approx(-1.0)
    assert "needs Pearson r >= 0.8" in captured.err


def test_scatter_plot_has_the_diagonal_and_the_points(tmp_path):
    path = tmp_path / "plot" / "judge_vs_human.png"
    scatter_png([8.0, 4.0, 4.0], [2.0, 6.0, 6.0], path, "test", side=480)
    image = Image.open(path).convert("RGB")
    assert image.size == (480, 480)
    margin, plot = 48, 480 - 2 * 48

    def at(h, j):
        return image.getpixel((round(margin + h / 10 * plot), round(480 - margin - j / 10 * plot)))

    r, g, b = at(5, 5)  # on y = x, away from the dot
    assert r > 150 and g < 120 and b < 120
    r, g, b = at(2, 8)  # the one sample: judge 8, human 2 (translucent blue over white)
    assert b > r + 40 and b > g
    assert sum(at(6, 4)) < sum(at(2, 8))  # two samples on one score pair show darker than one
    assert at(7, 3) == (255, 255, 255)  # an empty spot (off the grid lines)


def test_cli_writes_the_plot(tmp_path, capsys):
    pairs = [(h, h) for h in (1, 2, 3, 4)]
    assert main(write_run(tmp_path, pairs) + ["--min-samples", "4", "--plot", str(tmp_path / "p.png")]) == 0
    assert Image.open(tmp_path / "p.png").size == (480, 480)
