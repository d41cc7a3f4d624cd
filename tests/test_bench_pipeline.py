"""The whole evaluation through the CLI: fake editor + rule-based chat server on 127.0.0.1, the ShapesEdit exact
judge, the real tiny BAGEL on CPU; reports, resume, cache, comparison; one command per run folder (lock), the
exit status after judge failures, file permissions."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

import tests.test_bench_support as support
from inference.benchmark.compare import compare_runs
from inference.benchmark.files import atomic_write_json, read_json
from inference.benchmark.run_lock import RunFolderBusy, run_folder_lock
from inference.eval_benchmark import main
from tests.test_bench_support import Answer, ChatServer, FakeEditor, last_image_colour, make_bench, prompt_text, shifted
from tests.fixture_paths import TINY

TINY_BAGEL = TINY
SOURCES = {"a": (10, 0, 0), "b": (20, 0, 0), "c": (30, 0, 0), "d": (40, 0, 0), "e": (50, 0, 0)}
SPEC = [("a", "color", SOURCES["a"]), ("b", "color", SOURCES["b"]), ("c", "color", SOURCES["c"]),
        ("d", "style", SOURCES["d"]), ("e", "style", SOURCES["e"])]
# per sample: (SC reply, PQ reply); a: sqrt(6*7), b: sqrt(4*9) after one HTTP 500, c: garbage, d: sqrt(10*1) after
# one timeout, e: HTTP 500 forever
SC_PQ = {"a": ([8, 6], [7, 9]), "b": ([4, 9], [9, 9]), "d": ([10, 10], [4, 1])}


def chat_rule():
    by_colour = {shifted(colour): sid for sid, colour in SOURCES.items()}
    seen: dict[tuple[str, str], int] = {}

    def rule(body, server):
        sid = by_colour[last_image_colour(body)]
        question = "sc" if "editing success" in prompt_text(body) else "pq"
        with server.lock:
            n = seen[(sid, question)] = seen.get((sid, question), 0) + 1
        if sid == "e" or (sid == "b" and question == "sc" and n == 1):
            return Answer(status=500, text="overloaded")
        if sid == "c":
            return Answer(text="The edit looks nice!")
        if sid == "d" and question == "sc" and n == 1:
            return Answer(text="{}", delay_s=1.0)
        scores = SC_PQ[sid][0 if question == "sc" else 1]
        return Answer(text=json.dumps({"score": scores, "reasoning": f"{sid} {question}"}))

    return rule


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    s = ChatServer(chat_rule()).start()
    yield s
    s.stop()


@pytest.fixture
def editor_builds(monkeypatch):
    built = []

    def factory(model_path, device="cpu", dtype="float32"):
        built.append(model_path)
        return FakeEditor()

    monkeypatch.setattr(support, "make_fake_editor", factory)
    return built


def cli(bench_dir, out, server, *extra):
    return ["--model-path", "fake-ckpt", "--bench", "gedit", "--bench-dir", str(bench_dir), "--out", str(out),
            "--editor-factory", "tests.test_bench_support:make_fake_editor", "--device", "cpu", "--no-progress",
            "--judge", "openai", "--judge-model", "judge-x", "--judge-base-url", server.base_url,
            "--judge-timeout", "0.4", "--judge-retries", "2",
            "--judge-parse-retries", "1", "--judge-concurrency", "4", *extra]


def per_category(run: Path) -> dict[str, dict]:
    with open(run / "per_category.csv", newline="") as f:
        return {row["category"]: row for row in csv.DictReader(f)}


def test_generate_score_report_then_resume_and_cache(tmp_path, server, editor_builds):
    make_bench(tmp_path / "bench", SPEC)
    run = tmp_path / "run"
    assert main(cli(tmp_path / "bench", run, server, "--think", "--cfg-text-scale", "4")) == 0
    assert editor_builds == ["fake-ckpt"]

    rows = {r["id"]: r for r in map(json.loads, (run / "scores.jsonl").read_text().splitlines())}
    assert {k: r["status"] for k, r in rows.items()} == {"a": "ok", "b": "ok", "c": "parse_fail", "d": "ok",
                                                         "e": "error"}
    assert rows["a"]["overall"] == pytest.approx(math.sqrt(42))
    assert rows["b"]["overall"] == pytest.approx(6.0) and rows["b"]["transport_retries"] == 1
    assert rows["d"]["overall"] == pytest.approx(math.sqrt(10)) and rows["d"]["transport_retries"] == 1
    assert rows["c"]["attempts"] == 2 and rows["c"]["replies"] == ["The edit looks nice!"] * 2
    assert "HTTP 500" in rows["e"]["error"] and rows["e"]["overall"] is None
    assert rows["a"]["cot_text"].startswith("<think>") and rows["a"]["settings"]["hyper"] == {"cfg_text_scale": 4.0}
    assert rows["a"]["judge_model"] == "judge-x"

    table = per_category(run)
    assert float(table["color"]["overall"]) == pytest.approx((math.sqrt(42) + 6) / 2, abs=1e-3)
    assert (table["color"]["n_scored"], table["color"]["n_failed"]) == ("2", "1")
    assert float(table["style"]["overall"]) == pytest.approx(math.sqrt(10), abs=1e-3)
    macro = ((math.sqrt(42) + 6) / 2 + math.sqrt(10)) / 2
    assert float(table["ALL (macro)"]["overall"]) == pytest.approx(macro, abs=1e-3)
    summary = read_json(run / "summary.json")
    assert summary["scorers"]["viescore"]["headline"] == pytest.approx(macro)
    assert summary["scorers"]["viescore"]["failure_statuses"] == {"parse_fail": 1, "error": 1}
    assert f"**Overall (macro, official): {macro:.3f}**" in (run / "summary.md").read_text()
    with Image.open(run / "grids" / "color.png") as grid:
        assert grid.size == (4 * 256, 18 + 3 * 256)  # header + one row per sample
        assert grid.getpixel((128, 18 + 128)) == SOURCES["a"]  # source thumbnail, then the edited one
        assert grid.getpixel((384, 18 + 128)) == shifted(SOURCES["a"])

    # re-run: nothing is generated again, ok samples are not re-judged, the parse failure is replayed from the
    # cache; only the sample whose requests never got an answer reaches the server again (3 HTTP attempts)
    before = server.count()
    assert main(cli(tmp_path / "bench", run, server, "--think", "--cfg-text-scale", "4")) == 0
    assert editor_builds == ["fake-ckpt"] and server.count() == before + 3

    # scores wiped: every reply comes from the judge cache
    shutil.rmtree(run / "scores")
    before = server.count()
    assert main(cli(tmp_path / "bench", run, server, "--think", "--cfg-text-scale", "4",
                    "--stages", "score,report")) == 0
    assert server.count() == before + 3
    again = {r["id"]: r for r in map(json.loads, (run / "scores.jsonl").read_text().splitlines())}
    assert {k: (r["status"], r["overall"]) for k, r in again.items()} == {
        k: (r["status"], r["overall"]) for k, r in rows.items()}
    assert again["a"]["cache_hits"] == 2


def test_changed_settings_in_a_run_folder_is_a_one_line_error(tmp_path, server, editor_builds, capsys):
    make_bench(tmp_path / "bench", SPEC)
    run = tmp_path / "run"
    assert main(cli(tmp_path / "bench", run, server, "--think", "--stages", "generate")) == 0
    capsys.readouterr()
    # think off into a think-on run folder: refused, the folder's config kept
    assert main(cli(tmp_path / "bench", run, server, "--no-think", "--stages", "generate")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "made with other generation" in err and "new --out" in err
    assert read_json(run / "config.json")["generation"]["think"] is True


def test_compare_runs_reports_deltas(tmp_path):
    def summary(run, color, style):
        cats = [{"category": "color", "means": {"overall": color}}, {"category": "style", "means": {"overall": style}}]
        atomic_write_json(tmp_path / run / "summary.json", {"scorers": {"viescore": {
            "categories": cats, "macro": {"overall": (color + style) / 2}, "micro": {"overall": color}}}})

    summary("base", 6.0, 4.0)
    summary("think", 6.5, 3.0)
    text = compare_runs([tmp_path / "base", tmp_path / "think"])
    assert "| color | 6.000 | 6.500 (+0.500) |" in text
    assert "| style | 4.000 | 3.000 (-1.000) |" in text
    assert "| **ALL (macro)** | 5.000 | 4.750 (-0.250) |" in text


class OracleEditor:
    """Answers every ShapesEdit sample with its reference target image (the exact judge's best case)."""

    def __init__(self, bench_dir: Path):
        self.targets = {}
        for line in (bench_dir / "samples.jsonl").read_text().splitlines():
            row = json.loads(line)
            with Image.open(bench_dir / row["source_image"]) as src:
                key = (row["instruction"], src.convert("RGB").tobytes())
            self.targets[key] = bench_dir / row["reference"]["target_image"]

    def edit(self, image, instruction, *, think=False, seed=0, **hyper):
        with Image.open(self.targets[(instruction, image.tobytes())]) as im:
            return support.FakeResult(im.convert("RGB"), None, {})


def shapes_bench(tmp_path: Path, keep: int, size: int) -> Path:
    pytest.importorskip("data.shapes_edit.judge", reason="ShapesEdit package not in this checkout")
    from data.shapes_edit.export import write_benchmark as write_shapes

    bench = tmp_path / "shapes"
    write_shapes(bench, per_category=1, seed=0, size=size)
    lines = (bench / "samples.jsonl").read_text().splitlines()[:keep]
    (bench / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return bench


def test_shapes_exact_judge_scores_oracle_and_identity_edits(tmp_path, monkeypatch):
    bench = shapes_bench(tmp_path, keep=3, size=256)  # the benchmark's own size
    oracle = OracleEditor(bench)
    monkeypatch.setattr(support, "make_fake_editor", lambda *a, **k: oracle)
    args = ["--model-path", "x", "--bench", "shapes", "--bench-dir", str(bench), "--no-progress",
            "--editor-factory", "tests.test_bench_support:make_fake_editor", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "oracle")]) == 0
    oracle_rows = [json.loads(line) for line in (tmp_path / "oracle" / "scores.jsonl").read_text().splitlines()]
    assert [r["status"] for r in oracle_rows] == ["ok"] * 3 and {r["scorer"] for r in oracle_rows} == {"exact"}
    assert all(r["overall"] == pytest.approx(10.0) for r in oracle_rows)

    class Identity:
        def edit(self, image, instruction, **kw):
            return support.FakeResult(image, None, {})

    monkeypatch.setattr(support, "make_fake_editor", lambda *a, **k: Identity())
    assert main([*args, "--out", str(tmp_path / "identity")]) == 0
    identity_rows = [json.loads(line) for line in (tmp_path / "identity" / "scores.jsonl").read_text().splitlines()]
    assert all(r["subscores"]["instruction"] < 10 for r in identity_rows)  # an unchanged image fails the edit
    assert "identity" in compare_runs([tmp_path / "oracle", tmp_path / "identity"])


@pytest.mark.skipif(not TINY_BAGEL.is_dir(), reason="tiny BAGEL fixture not available")
def test_tiny_bagel_on_tiny_shapes_benchmark_runs_on_cpu(tmp_path):
    bench = shapes_bench(tmp_path, keep=2, size=64)
    out = tmp_path / "run"
    assert main(["--model-path", str(TINY_BAGEL), "--bench", "shapes", "--bench-dir", str(bench), "--out", str(out),
                 "--think", "--device", "cpu", "--dtype", "float32", "--num-timesteps", "3",
                 "--max-think-tokens", "8", "--hyper", "vae_transform=[64, 32, 16]",
                 "--hyper", "vit_transform=[56, 28, 14]", "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert all(isinstance(r["cot_text"], str) and 0 <= r["overall"] <= 10 for r in rows)
    record = read_json(out / "gen" / f"{rows[0]['id']}.json")
    assert record["editor_settings"]["num_timesteps"] == 3 and record["timings"]["think_tokens"] <= 8
    with Image.open(out / "images" / f"{rows[0]['id']}.png") as im:
        assert im.size == (64, 64)
    assert (out / "summary.md").is_file() and list((out / "grids").glob("*.png"))


def test_torchrun_two_ranks_share_generation_and_rank0_scores(tmp_path, server):
    """Real torchrun (2 CPU processes, gloo barrier): each rank generates its strided half, rank 0 alone scores."""
    import subprocess
    import sys

    make_bench(tmp_path / "bench", SPEC)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "inference/eval_benchmark.py", *cli(tmp_path / "bench", out, server)]
    done = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = {sid: read_json(out / "gen" / f"{sid}.json")["rank"] for sid in SOURCES}
    assert ranks == {"a": 0, "b": 1, "c": 0, "d": 1, "e": 0}
    assert all(read_json(out / "gen" / f"{sid}.json")["world_size"] == 2 for sid in SOURCES)
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "ok", "parse_fail", "ok", "error"]
    # judged once: a 2, b 3 (one 500), c 2 (re-ask), d 3 (one timeout), e 3 (500 x 3) requests
    assert server.count() == 13


# ---------------------------------------------------------------- one command per run folder; the exit status


@pytest.fixture
def gated_server(monkeypatch):
    """Answers every judge request well, but only once ``release`` is set (so a run can be held mid-scoring)."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    release = threading.Event()

    def rule(body, server):
        if not release.wait(20):
            return Answer(status=500, text="test gate never opened")
        text = prompt_text(body)
        if "PLAN:" in text:  # CEC
            return Answer(text=json.dumps({"score": 8, "reasoning": "plan carried out"}))
        return Answer(text=json.dumps({"score": [8, 9], "reasoning": "fine"}))

    s = ChatServer(rule).start()
    s.release = release
    yield s
    release.set()
    s.stop()


def _in_thread(results: dict, key: str, argv: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.__setitem__(key, main(argv)), daemon=True)
    thread.start()
    return thread


def _wait_for(condition, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_second_command_on_a_run_folder_refuses_or_waits_and_nothing_is_judged_twice(
        tmp_path, gated_server, editor_builds, capsys):
    make_bench(tmp_path / "bench", SPEC)
    run = tmp_path / "run"

    def args(*extra):
        return cli(tmp_path / "bench", run, gated_server, "--think", "--judge-timeout", "60", *extra)

    results: dict[str, int] = {}
    first = _in_thread(results, "first", args("--scorers", "viescore"))
    _wait_for(lambda: gated_server.count() > 0, "the first command to start judging")  # it holds the folder now

    assert main(args("--scorers", "viescore")) == 1  # default --lock-timeout 0: refuses at once
    refusal = [line for line in capsys.readouterr().err.splitlines() if "is in use by" in line]
    assert len(refusal) == 1 and f"is in use by pid {os.getpid()} on {socket.gethostname()}" in refusal[0]
    assert "--lock-timeout SECONDS" in refusal[0]

    waiting = _in_thread(results, "waiting", args("--scorers", "cec", "--lock-timeout", "60"))
    time.sleep(1.0)
    assert waiting.is_alive() and "waiting" not in results  # queued behind the first command
    gated_server.release.set()
    first.join(60)
    waiting.join(60)
    assert results == {"first": 0, "waiting": 0}
    # every sample judged once: 2 VIEScore questions by the first command, 1 CEC question by the waiting one
    assert gated_server.count() == 5 * 2 + 5
    assert read_json(run / "config.json")["judges"] == {"viescore": "judge-x", "cec": "judge-x"}
    assert editor_builds == ["fake-ckpt"]  # the waiting command found every image made


def test_lock_of_a_killed_command_is_released(tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from inference.benchmark.run_lock import run_folder_lock\n"
         f"with run_folder_lock({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(60)"],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match=f"in use by pid {holder.pid} on {socket.gethostname()} since .* "
                                                "after waiting 0.2 s"):
            with run_folder_lock(tmp_path, timeout_s=0.2, poll_s=0.05):
                pass
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    with run_folder_lock(tmp_path):  # the OS released it
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_judge_failures_end_with_a_count_and_fail_the_exit_on_request(tmp_path, server, editor_builds, capsys):
    make_bench(tmp_path / "bench", SPEC)
    run = tmp_path / "run"
    assert main(cli(tmp_path / "bench", run, server)) == 0  # c: unparsable replies, e: HTTP 500 after retries
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "2 of 5 items failed judging; re-run to retry them"
    assert main(cli(tmp_path / "bench", run, server, "--fail-on-judge-errors")) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "2 of 5 items failed judging; re-run to retry them"


def test_run_files_get_the_users_umask_permissions(tmp_path, server, editor_builds):
    make_bench(tmp_path / "bench", SPEC)
    run = tmp_path / "run"
    previous = os.umask(0o027)
    try:
        main(cli(tmp_path / "bench", run, server))
    finally:
        os.umask(previous)
    files = [run / "config.json", run / "scores.jsonl", run / "images" / "a.png", run / "gen" / "a.json",
             run / "scores" / "viescore" / "a.json", next((run / "judge_cache").rglob("*.json"))]
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: "0o640" for f in files}
    assert not list(run.rglob("*.tmp"))


def test_torchrun_ranks_all_stop_when_the_run_folder_is_busy(tmp_path, server):
    """Rank 0 cannot take the lock: it tells rank 1, and both leave with the line instead of waiting at a barrier."""
    import subprocess
    import sys

    make_bench(tmp_path / "bench", SPEC)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "inference/eval_benchmark.py", *cli(tmp_path / "bench", out, server)]
    with run_folder_lock(out):
        done = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                              timeout=120)
    assert done.returncode != 0
    for rank in (0, 1):
        assert f"rank {rank}: run folder {out} is in use by pid {os.getpid()}" in done.stderr, done.stderr[-2000:]
    assert server.count() == 0 and not (out / "images").exists()
