"""Fetch a public dataset repository from the Hugging Face Hub into the data root (resumable, pattern-filtered)."""

from __future__ import annotations

import glob

from data.dataset_info import get_dataset, resolve


def download_dataset(repo_id: str, local_dir: str, allow_patterns: list[str] | None = None,
                     revision: str | None = None) -> str:
    """Downloads (or completes) a dataset snapshot into ``local_dir``; returns that folder."""
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id=repo_id, repo_type="dataset", local_dir=local_dir,
                             allow_patterns=allow_patterns or None, revision=revision)


def registered_target(name: str) -> tuple[str, str, list[str]]:
    """(repo id, local folder, file patterns) of a registry entry that names its Hub repository."""
    info = get_dataset(name)
    if not info.hf_repo:
        raise ValueError(f"dataset {name!r} names no Hugging Face repository (hf_repo) in data/dataset_info.py; "
                         "pass --repo-id and --out instead")
    folder = resolve(info.paths[0])
    if glob.has_magic(folder):  # a glob: download into the folder part before the first wildcard
        folder = folder[: min(folder.find(c) for c in "*?[" if c in folder)].rsplit("/", 1)[0]
    return info.hf_repo, folder, list(info.hf_allow_patterns)
