"""Written files and folders get the user's umask (shared clusters: teammates read edits, reports and exports)."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest
from PIL import Image

from data.atomic_write import atomic_write, temporary_sibling
from inference.benchmark.files import atomic_write_json, atomic_write_png
from modeling.bagel.loader import export_bagel

REPO = Path(__file__).resolve().parents[1]
LIBRARY_FOLDERS = ("data", "inference", "modeling", "train", "scripts")


@pytest.fixture(params=[(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)], ids=["umask022", "umask002"])
def umask(request):
    value, file_mode, dir_mode = request.param
    old = os.umask(value)
    yield file_mode, dir_mode
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_benchmark_reports_and_images_follow_the_umask(tmp_path, umask):
    file_mode, dir_mode = umask
    atomic_write_json(tmp_path / "run" / "summary.json", {"score": 1.0})
    atomic_write_png(tmp_path / "run" / "images" / "a.png", Image.new("RGB", (4, 4)))
    assert mode(tmp_path / "run" / "summary.json") == file_mode
    assert mode(tmp_path / "run" / "images" / "a.png") == file_mode
    assert mode(tmp_path / "run" / "images") == dir_mode
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["images", "summary.json"]


def test_exported_checkpoint_follows_the_umask(tiny_bundle, tmp_path, umask):
    file_mode, dir_mode = umask
    out = export_bagel(tiny_bundle, tmp_path / "exported")
    assert mode(out) == dir_mode
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"ema.safetensors", "ae.safetensors", "llm_config.json"} <= {p.name for p in files}
    assert {p.name: mode(p) for p in files} == {p.name: file_mode for p in files}


def test_failed_atomic_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def crash(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    fd, tmp = temporary_sibling(target)
    os.close(fd)
    assert Path(tmp).parent == tmp_path and Path(tmp).name.startswith(".out.txt.")


def _tempfile_uses(path: Path) -> list[str]:
    names = {"mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryDirectory"}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        used = ([node.attr] if isinstance(node, ast.Attribute) else
                [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else [])
        found += [f"{path.relative_to(REPO)}:{node.lineno} {name}" for name in used if name in names]
    return found


def test_no_library_writer_uses_mkstemp_or_mkdtemp():
    """Both create owner-only files/folders (0600/0700) that a rename into place would publish unreadable."""
    assert [use for folder in LIBRARY_FOLDERS for p in sorted((REPO / folder).rglob("*.py"))
            for use in _tempfile_uses(p)] == []
