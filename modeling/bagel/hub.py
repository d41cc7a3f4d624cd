"""Where the checkpoints come from: Hugging Face Hub repositories, their folders under ``ckpts/``, the download.

    ckpts/bagel     BAGEL-7B-MoT, the base model (``$BAGEL_REPO``, default ByteDance-Seed/BAGEL-7B-MoT)
    ckpts/metacot   the Meta-CoT checkpoint (``$METACOT_REPO``; not known to be published: the default id is a guess)

The command-line tools default to ``ckpts/metacot`` and fall back to ``ckpts/bagel``; ``scripts/download_ckpt.sh``
fills both folders and the SFT launcher fetches the base model when its config points at a missing ``ckpts/`` folder.
Every failure of the Hub (repository missing, gated, unreachable) becomes one ``HubDownloadError`` line.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CKPTS_DIR = REPO_ROOT / "ckpts"
# the official folder: configs, weights, tokenizer (the Hub repos also hold images and docs we do not need)
CHECKPOINT_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.py", "*.md")
WEIGHT_FILES = ("llm_config.json", "vit_config.json", "ema.safetensors", "ae.safetensors")  # a complete download


class HubDownloadError(RuntimeError):
    """A download that cannot be done; the message is one line naming the repository and the fix."""


@dataclass(frozen=True)
class KnownCheckpoint:
    name: str  # folder under ckpts/
    title: str
    repo_env: str  # environment variable overriding the repository id
    default_repo: str

    @property
    def repo_id(self) -> str:
        return os.environ.get(self.repo_env) or self.default_repo

    def folder(self, ckpts_dir: Path | None = None) -> Path:
        return Path(ckpts_dir or CKPTS_DIR) / self.name


KNOWN_CHECKPOINTS: dict[str, KnownCheckpoint] = {
    "bagel": KnownCheckpoint("bagel", "BAGEL-7B-MoT", "BAGEL_REPO", "ByteDance-Seed/BAGEL-7B-MoT"),
    # The Meta-CoT README lists "Release Meta-CoT checkpoints" as to do; this id is our guess, not a published one.
    "metacot": KnownCheckpoint("metacot", "Meta-CoT", "METACOT_REPO", "shiyi0408/Meta-CoT"),
}
MODEL_SEARCH_ORDER = ("metacot", "bagel")


def is_model_folder(path: str | Path) -> bool:
    return (Path(path) / "llm_config.json").is_file()


def is_complete_download(path: str | Path) -> bool:
    return all((Path(path) / name).is_file() for name in WEIGHT_FILES)


def default_model_dir(ckpts_dir: Path | None = None) -> tuple[Path, str | None]:
    """The first downloaded folder of ``MODEL_SEARCH_ORDER`` and a note when it is not the first choice.

    Raises ``HubDownloadError`` (one line: how to download) when none is there.
    """
    wanted = KNOWN_CHECKPOINTS[MODEL_SEARCH_ORDER[0]].folder(ckpts_dir)
    for name in MODEL_SEARCH_ORDER:
        folder = KNOWN_CHECKPOINTS[name].folder(ckpts_dir)
        if is_model_folder(folder):
            note = None if folder == wanted else (
                f"{wanted} not found; using {folder} ({KNOWN_CHECKPOINTS[name].title})")
            return folder, note
    raise HubDownloadError(f"no model in {wanted} or {KNOWN_CHECKPOINTS['bagel'].folder(ckpts_dir)}; download with "
                           "`bash scripts/download_ckpt.sh` or pass --model-path DIR")


def checkpoint_for_folder(path: str | Path, ckpts_dir: Path | None = None) -> KnownCheckpoint | None:
    """The known checkpoint whose default folder ``path`` is (relative paths against the current directory)."""
    resolved = Path(path).resolve()
    return next((c for c in KNOWN_CHECKPOINTS.values() if c.folder(ckpts_dir).resolve() == resolved), None)


def hub_error_message(error: Exception, repo_id: str, repo_env: str | None = None) -> str:
    """One line saying why the Hub refused ``repo_id`` and what to do."""
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    override = f" (set {repo_env}=ORG/NAME to use another repository)" if repo_env else ""
    if isinstance(error, GatedRepoError):
        return f"{repo_id} is gated: accept its terms on huggingface.co and set HF_TOKEN"
    if isinstance(error, RepositoryNotFoundError):
        return f"{repo_id} does not exist on the Hugging Face Hub or is private (not published yet?){override}"
    if isinstance(error, RevisionNotFoundError):
        return f"{repo_id} has no such revision{override}"
    if isinstance(error, LocalEntryNotFoundError):
        return f"the Hugging Face Hub is not reachable for {repo_id}; check the internet connection (or HF_ENDPOINT)"
    if isinstance(error, HfHubHTTPError):
        return f"the Hugging Face Hub refused {repo_id}: {str(error).splitlines()[0]}"
    return f"downloading {repo_id} failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def _holds_data(folder: Path) -> bool:
    """Anything worth keeping for a resumed download (lock files alone are not)."""
    return any(p.is_file() and p.suffix != ".lock" for p in folder.rglob("*"))


def download_repo(repo_id: str, local_dir: str | Path | None, repo_type: str = "model",
                  allow_patterns: tuple[str, ...] | None = None, repo_env: str | None = None) -> Path:
    """``snapshot_download`` into ``local_dir`` (None: the Hub cache), resumable; a failure is one
    ``HubDownloadError`` line and leaves no empty folder behind (partial files stay so that re-running resumes)."""
    from huggingface_hub import snapshot_download

    local_dir = Path(local_dir) if local_dir is not None else None
    existed = local_dir is None or local_dir.exists()
    try:
        path = snapshot_download(repo_id=repo_id, repo_type=repo_type,
                                 local_dir=str(local_dir) if local_dir is not None else None,
                                 allow_patterns=list(allow_patterns) if allow_patterns else None)
    except (OSError, ValueError) as e:  # the Hub's errors are OSErrors; a malformed repo id is a ValueError
        if not existed and local_dir.is_dir() and not _holds_data(local_dir):
            shutil.rmtree(local_dir)
        raise HubDownloadError(hub_error_message(e, repo_id, repo_env)) from None
    return Path(path)


def download_checkpoint(name: str, target: str | Path | None = None, repo_id: str | None = None) -> Path:
    """Download the known checkpoint ``name`` (``bagel`` / ``metacot``) to ``target`` (default ``ckpts/<name>``)."""
    if name not in KNOWN_CHECKPOINTS:
        raise HubDownloadError(f"unknown checkpoint {name!r}; choose one of {', '.join(KNOWN_CHECKPOINTS)}")
    known = KNOWN_CHECKPOINTS[name]
    return download_repo(repo_id or known.repo_id, target or known.folder(), "model", CHECKPOINT_PATTERNS,
                         None if repo_id else known.repo_env)
