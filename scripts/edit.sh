#!/usr/bin/env bash
# The common case: think, then edit (the model's defaults; CUDA when available, else the CPU in fp32).
#   bash scripts/edit.sh IN.png "instruction" [OUT.png] [more inference/edit_single.py flags]
# MODEL_PATH=DIR picks the model (default: ckpts/metacot, else ckpts/bagel); OUT defaults to
# outputs/<IN name>_edited.png. Add --offload auto for a GPU smaller than the model (e.g. 24 GB).
# Paths are relative to where you run it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if wants_help "$@"; then usage "$0"; exit 0; fi
if [ $# -lt 2 ]; then usage "$0" >&2; exit 2; fi
IN=$1; INSTRUCTION=$2; shift 2
EXTRA=()
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then EXTRA=(--out "$1"); shift; fi
if [ -n "${MODEL_PATH:-}" ]; then EXTRA+=(--model-path "$MODEL_PATH"); fi
exec "$PY" "$ROOT/inference/edit_single.py" --image "$IN" --instruction "$INSTRUCTION" --think "${EXTRA[@]}" "$@"
