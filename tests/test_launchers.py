"""The shell scripts as a user runs them: --help everywhere, one-line errors, paths against the caller's directory,
a free rendezvous port, the project's Python, env.sh run or sourced. Launchers run against a fake Python that
records its command lines (nothing trains), so each test takes well under a few seconds."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

from scripts.launch import SFT_PATH_KEYS, LaunchError, free_port, port_is_free, resolve_sft_args
from train.sft.config import SFTConfig

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (REPO / "scripts").glob("*.sh") if p.name != "common.sh")
NOT_PATH_KEYS = {"logging.run_name", "logging.wandb_project"}


def run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, env={**os.environ, **env})


@pytest.fixture
def port_29500_taken():
    with socket.socket() as s:
        if port_is_free(29500):
            s.bind(("127.0.0.1", 29500))
            s.listen()
        yield


def test_free_port_moves_off_a_taken_default(port_29500_taken):
    first, second = free_port(), free_port()
    assert 29500 not in (first, second) and port_is_free(first) and port_is_free(second)


def test_sft_args_resolve_against_the_callers_directory(tmp_path):
    (tmp_path / "my.yaml").write_text("output_dir: x\n")
    args = resolve_sft_args(["my.yaml", "output_dir=runs/a", "data.mix=mix.yaml", "optim.lr=1e-5",
                             "model.model_dir=/abs/bagel", "validation.prompts=null", "logging.run_name=a/b"],
                            str(tmp_path))
    assert args == [str(tmp_path / "my.yaml"), f"output_dir={tmp_path / 'runs/a'}", f"data.mix={tmp_path / 'mix.yaml'}",
                    "optim.lr=1e-5", "model.model_dir=/abs/bagel", "validation.prompts=null", "logging.run_name=a/b"]
    with pytest.raises(LaunchError, match="config file nope.yaml not found"):
        resolve_sft_args(["nope.yaml"], str(tmp_path))


def _string_keys(cls: type, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
        for option in options:
            if dataclasses.is_dataclass(option):
                yield from _string_keys(option, f"{prefix}{f.name}.")
            elif option is str:
                yield prefix + f.name


def test_every_path_field_of_the_sft_config_is_resolved():
    assert set(_string_keys(SFTConfig)) == SFT_PATH_KEYS | NOT_PATH_KEYS


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_has_help(script, tmp_path):
    done = run(["bash", str(REPO / "scripts" / script), "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"scripts/{script}" in done.stdout and done.stderr == ""
    assert list(tmp_path.iterdir()) == []  # e.g. no download into a folder named --help


def test_missing_config_is_one_line_before_torchrun(tmp_path):
    done = run(["bash", str(REPO / "scripts" / "train_sft_edit_single_node.sh"), "configs/sft/tiny_cpu.yaml"],
               tmp_path)  # a path of the repository, given from another folder
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: config file configs/sft/tiny_cpu.yaml not found (looked at {tmp_path}/configs/sft/tiny_cpu.yaml); "
        "pass an existing YAML file"]


@pytest.fixture
def fake_repo(tmp_path):
    """scripts/ of this repository beside a .venv/bin/python that logs its arguments (launch.py runs for real)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("common.sh", "launch.py", "train_sft_edit.sh", "train_sft_edit_single_node.sh"):
        shutil.copy(REPO / "scripts" / name, repo / "scripts" / name)
    python = repo / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"""#!/usr/bin/env bash
case "$1" in
  */launch.py) exec {sys.executable} "$@" ;;
  -c) echo 0 ;;
  *) (IFS=$'\\x1f'; echo "$PWD"$'\\x1f'"$*") >> {tmp_path}/calls ;;
esac
""")
    python.chmod(0o755)
    caller = tmp_path / "caller"
    caller.mkdir()
    (caller / "my.yaml").write_text("output_dir: x\n")
    return repo, caller, tmp_path / "calls"


def _calls(log: Path) -> list[list[str]]:
    return [line.split("\x1f") for line in log.read_text().splitlines()]


def test_single_node_launcher_uses_the_venv_a_free_port_and_absolute_paths(fake_repo, port_29500_taken):
    repo, caller, log = fake_repo
    launcher = str(repo / "scripts" / "train_sft_edit_single_node.sh")
    for _ in range(2):
        done = run(["bash", launcher, "my.yaml", "output_dir=out", "optim.lr=1e-5"], caller)
        assert done.returncode == 0, done.stderr
    calls = _calls(log)
    assert [c[0] for c in calls] == [str(repo)] * 4  # run from the repository root, configs' own paths hold
    prepare, torchrun = calls[0][1:], calls[1][1:]
    wanted = [str(caller / "my.yaml"), f"output_dir={caller / 'out'}", "optim.lr=1e-5"]
    assert prepare == ["-m", "train.sft.main", "--prepare", *wanted]
    assert torchrun[:2] == ["-m", "torch.distributed.run"] and torchrun[-len(wanted) - 2:] == ["-m", "train.sft.main",
                                                                                                 *wanted]
    port = torchrun[torchrun.index("--master_port") + 1]
    assert port != "29500" and torchrun[torchrun.index("--nproc_per_node") + 1] == "1"

    done = run(["bash", launcher, "my.yaml"], caller, MASTER_PORT="31234")
    assert done.returncode == 0 and "31234" in _calls(log)[-1]


def test_env_sh_run_and_sourced_from_another_directory(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(REPO / "env.sh", repo / "env.sh")
    (repo / "requirements.txt").write_text("pyyaml\n")
    python = repo / ".venv" / "bin" / "python"  # pip and torch are faked; the rest is the real interpreter
    python.write_text(f"""#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$*" >> {tmp_path}/pip; exit 0; fi
if [ "$1" = "-c" ] && [ "$2" = "import torch" ]; then exit 0; fi
exec {sys.executable} "$@"
""")
    python.chmod(0o755)
    (repo / ".venv" / "bin" / "activate").write_text(f'export VIRTUAL_ENV={repo / ".venv"}\n')
    other = tmp_path / "other"
    other.mkdir()

    for _ in range(2):  # the second run finds requirements.txt unchanged and skips pip
        assert run(["bash", str(repo / "env.sh")], other).returncode == 0
    assert (tmp_path / "pip").read_text().splitlines() == ["-m pip install -q -r requirements.txt"]

    probe = f'source {repo / "env.sh"}; echo "rc=$? dir=$PWD opts=$- venv=$VIRTUAL_ENV"; false; echo still-here'
    done = run(["bash", "-c", probe], other)
    rc, cwd, opts, venv = done.stdout.splitlines()[0].split()
    assert (rc, cwd, venv) == ("rc=0", f"dir={other}", f"venv={repo / '.venv'}")
    assert "e" not in opts.removeprefix("opts=") and "still-here" in done.stdout  # the caller's shell survives errors

    (repo / "requirements.txt").write_text("pyyaml\ntqdm\n")  # changed: pip runs again
    assert run(["bash", "-c", f"source {repo / 'env.sh'}"], other).returncode == 0
    assert len((tmp_path / "pip").read_text().splitlines()) == 2
