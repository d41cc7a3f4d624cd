#!/usr/bin/env bash
# Creates .venv (seeing system packages, so a CUDA torch already installed is kept) and installs requirements.
#   bash env.sh      set up (idempotent; pip runs again only when requirements.txt changed since its last success)
#   source env.sh    the same, then activates .venv in your shell (your directory and shell options are left alone)
# PYTHON=python3.X picks the interpreter the venv is made from.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then  # sourced: set up in a child bash, then activate here
  if bash "${BASH_SOURCE[0]}" "$@"; then
    source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv/bin/activate"
  else
    echo "env.sh: set-up failed (see above); .venv not activated" >&2
    return 1
  fi
  return 0
fi
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^[^#]/{/^#/{s/^# \{0,1\}//;p}}' "$0"
  exit 0
fi
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
STAMP=.venv/.requirements.sha256  # requirements.txt as last installed
WANT=$("$PY" -c "import hashlib; print(hashlib.sha256(open('requirements.txt', 'rb').read()).hexdigest())")
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  "$PY" -m pip install -q -r requirements.txt
  echo "$WANT" > "$STAMP"
fi
# flash-attn is optional (CUDA only): used when importable, never required.
