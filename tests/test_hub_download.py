"""Checkpoint downloads without the network: a fake ``snapshot_download`` that writes files or raises the Hub's own
errors. One-line messages, no empty folder left, repository ids overridable, the SFT base checkpoint fetched only
for a missing known ckpts/ folder."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

import modeling.bagel.hub as hub
from scripts import download_ckpt
from train.sft.base_checkpoint import ensure_base_checkpoint
from train.sft.config import ModelConfig, SFTConfig


def hub_error(cls: type[Exception], message: str) -> Exception:
    """The Hub's HTTP errors need a response object to be built; the message is all the code under test reads."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


class FakeHub:
    """Stands in for ``huggingface_hub.snapshot_download``: repos in ``published`` get the official files."""

    def __init__(self, published: set[str], unreachable: bool = False):
        self.published, self.unreachable, self.calls = published, unreachable, []

    def __call__(self, repo_id, repo_type="model", local_dir=None, allow_patterns=None, **kw):
        self.calls.append((repo_id, repo_type, local_dir, tuple(allow_patterns or ())))
        if local_dir is not None:  # the real function creates its .cache/ bookkeeping before asking
            (Path(local_dir) / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)
            (Path(local_dir) / ".cache" / "huggingface" / ".gitignore.lock").touch()
        if self.unreachable:
            raise LocalEntryNotFoundError("An error happened while trying to locate the files on the Hub ...")
        if repo_id.startswith("gated/"):
            raise hub_error(GatedRepoError, f"403 Client Error. Cannot access gated repo {repo_id}")
        if repo_id not in self.published:
            raise hub_error(RepositoryNotFoundError, f"404 Client Error. Repository Not Found for {repo_id}")
        for name in hub.WEIGHT_FILES:
            (Path(local_dir) / name).write_text("x")
        return str(local_dir)


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    fake = FakeHub({"ByteDance-Seed/BAGEL-7B-MoT"})
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    monkeypatch.setattr(hub, "CKPTS_DIR", tmp_path / "ckpts")
    for name in ("BAGEL_REPO", "METACOT_REPO"):
        monkeypatch.delenv(name, raising=False)
    return fake


@pytest.mark.parametrize(("repo", "unreachable", "message"), [
    ("nobody/missing", False, "nobody/missing does not exist on the Hugging Face Hub or is private"),
    ("gated/model", False, "gated/model is gated: accept its terms on huggingface.co and set HF_TOKEN"),
    ("ByteDance-Seed/BAGEL-7B-MoT", True, "the Hugging Face Hub is not reachable for ByteDance-Seed/BAGEL-7B-MoT"),
])
def test_hub_failures_are_one_line_and_leave_no_folder(fake_hub, tmp_path, repo, unreachable, message):
    fake_hub.unreachable = unreachable
    target = tmp_path / "new" / "model"
    with pytest.raises(hub.HubDownloadError) as caught:
        hub.download_repo(repo, target, allow_patterns=hub.CHECKPOINT_PATTERNS, repo_env="METACOT_REPO")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not target.exists()


def test_failed_download_into_an_existing_folder_keeps_it(fake_hub, tmp_path):
    target = tmp_path / "mine"
    (target / "notes.txt").parent.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(hub.HubDownloadError):
        hub.download_repo("nobody/missing", target)
    assert (target / "notes.txt").read_text() == "keep me"


def test_download_script_fills_ckpts_and_names_the_unpublished_one(fake_hub, capsys):
    code = download_ckpt.main([])
    out, err = capsys.readouterr()
    assert code == 1  # BAGEL downloaded, Meta-CoT not published
    assert hub.is_complete_download(hub.CKPTS_DIR / "bagel") and not (hub.CKPTS_DIR / "metacot").exists()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == ["error: shiyi0408/Meta-CoT does not exist on the Hugging Face Hub or is private (not published "
                      "yet?) (set METACOT_REPO=ORG/NAME to use another repository)"]
    assert [c[2] for c in fake_hub.calls] == [str(hub.CKPTS_DIR / "bagel"), str(hub.CKPTS_DIR / "metacot")]
    assert all(c[3] == hub.CHECKPOINT_PATTERNS for c in fake_hub.calls)


def test_repository_ids_are_overridable(fake_hub, monkeypatch, tmp_path):
    fake_hub.published.add("lab/metacot-7b")
    monkeypatch.setenv("METACOT_REPO", "lab/metacot-7b")
    assert download_ckpt.main(["--only", "metacot"]) == 0
    assert fake_hub.calls[-1][0] == "lab/metacot-7b" and hub.is_complete_download(hub.CKPTS_DIR / "metacot")
    # the earlier form: one folder, an explicit repository
    fake_hub.published.add("lab/other")
    assert download_ckpt.main([str(tmp_path / "one"), "lab/other"]) == 0
    assert fake_hub.calls[-1][:3] == ("lab/other", "model", str(tmp_path / "one"))


def test_default_model_prefers_metacot(fake_hub):
    with pytest.raises(hub.HubDownloadError, match="bash scripts/download_ckpt.sh"):
        hub.default_model_dir()
    for name in ("bagel", "metacot"):
        (hub.CKPTS_DIR / name).mkdir(parents=True)
        (hub.CKPTS_DIR / name / "llm_config.json").write_text("{}")
        folder, note = hub.default_model_dir()
        assert folder == hub.CKPTS_DIR / name and (note is None) == (name == "metacot")


def test_sft_fetches_only_a_missing_known_ckpts_folder(fake_hub, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # relative ckpts/bagel is the repository's when run from its root
    assert ensure_base_checkpoint(SFTConfig(model=ModelConfig(model_dir="ckpts/bagel"))) == Path("ckpts/bagel")
    assert hub.is_complete_download(tmp_path / "ckpts" / "bagel")
    assert "downloading BAGEL-7B-MoT (ByteDance-Seed/BAGEL-7B-MoT)" in capsys.readouterr().err
    assert ensure_base_checkpoint(SFTConfig(model=ModelConfig(model_dir="ckpts/bagel"))) is None  # complete now
    assert ensure_base_checkpoint(SFTConfig(model=ModelConfig(model_dir=str(tmp_path / "elsewhere")))) is None
    assert ensure_base_checkpoint(SFTConfig(model=ModelConfig(random_init_configs="x.json"))) is None
    assert len(fake_hub.calls) == 1
