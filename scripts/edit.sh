#!/usr/bin/env bash
# The common case: think, then edit, with the official defaults on the first GPU.
# Usage: MODEL_PATH=models/BAGEL-7B-MoT bash scripts/edit.sh IN.png "instruction" OUT.png [more edit_single.py flags]
# (DEVICE=cpu DTYPE=fp32 for machines without a GPU; add --offload auto for a GPU smaller than the model, e.g. 24 GB;
# paths are relative to where you run it.)
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash scripts/edit.sh IN.png \"instruction\" OUT.png [flags of inference/edit_single.py]" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3 )}
IN=$1; INSTRUCTION=$2; OUT=$3; shift 3
exec "$PY" "$ROOT/inference/edit_single.py" --model-path "${MODEL_PATH:-models/BAGEL-7B-MoT}" --image "$IN" \
  --instruction "$INSTRUCTION" --out "$OUT" --think --device "${DEVICE:-cuda}" --dtype "${DTYPE:-bf16}" "$@"
