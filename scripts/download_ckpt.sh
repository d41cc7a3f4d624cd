#!/usr/bin/env bash
# Download BAGEL-7B-MoT into ckpts/bagel and the Meta-CoT checkpoint into ckpts/metacot (Hugging Face Hub).
#   bash scripts/download_ckpt.sh [--only bagel|metacot] [--ckpts-dir DIR]
#   bash scripts/download_ckpt.sh TARGET_DIR [REPO_ID]      # one folder (BAGEL-7B-MoT unless REPO_ID)
# Repository ids: BAGEL_REPO=..., METACOT_REPO=... (the Meta-CoT one is a guess until it is published).
# Resumable; a repository that is missing or unreachable fails in one line. Run on a machine with internet access.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if wants_help "$@"; then usage "$0"; echo; exec "$PY" "$ROOT/scripts/download_ckpt.py" --help; fi
exec "$PY" "$ROOT/scripts/download_ckpt.py" "$@"
