#!/usr/bin/env bash
# Evaluate a checkpoint on a benchmark with one process per GPU (generation sharded; rank 0 scores and reports).
# Usage: NGPU=8 bash scripts/eval_benchmark.sh --model-path DIR --bench gedit --bench-dir data/bench/gedit_en \
#            --out runs/eval/NAME [--think] [--judge openai|qwen_local|exact] [any eval_benchmark.py flag]
# Judge key: export OPENAI_API_KEY=... (or the variable named by --judge-api-key-env).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NGPU=${NGPU:-$(python3 -c "import torch; print(max(torch.cuda.device_count(), 1))")}
exec torchrun --standalone --nproc_per_node="$NGPU" inference/eval_benchmark.py "$@"
