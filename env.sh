#!/usr/bin/env bash
# Creates .venv (seeing system packages, so a CUDA torch already installed is kept) and installs requirements.
# Usage: bash env.sh            (idempotent; re-running only checks)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv --system-site-packages .venv
fi
PY=.venv/bin/python
if ! "$PY" -c "import torch" 2>/dev/null; then
  # CPU wheel; GPU machines that already have torch skip this.
  "$PY" -m pip install -q torch==2.13.0
fi
"$PY" -m pip install -q -r requirements.txt
# flash-attn is optional (CUDA only): used when importable, never required.
