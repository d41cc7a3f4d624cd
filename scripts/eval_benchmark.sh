#!/usr/bin/env bash
# Evaluate a checkpoint on a benchmark with one process per GPU (generation sharded; rank 0 scores and reports).
#   NGPU=8 bash scripts/eval_benchmark.sh [--model-path DIR] [--bench 21tasks|gedit|imgedit|shapes] \
#       [--bench-dir DIR] [--out runs/eval/NAME] [--think] [any inference/eval_benchmark.py flag]
# Defaults as inference/eval_benchmark.py: ckpts/metacot (else ckpts/bagel) on 21-Tasks-Bench in data/bench/21tasks.
# NGPU: processes (default: all visible GPUs, or 1). Paths are relative to where you run this.
# Judge key: export OPENAI_API_KEY=... (or the variable named by --judge-api-key-env).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if wants_help "$@"; then usage "$0"; echo; exec "$PY" "$ROOT/inference/eval_benchmark.py" --help; fi
NGPU=${NGPU:-$("$PY" -c "import torch; print(max(torch.cuda.device_count(), 1))")}
# --standalone: a local rendezvous on a free port, so evaluations side by side do not clash
exec "$PY" -m torch.distributed.run --standalone --nproc_per_node="$NGPU" "$ROOT/inference/eval_benchmark.py" "$@"
