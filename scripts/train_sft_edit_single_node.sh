#!/usr/bin/env bash
# Meta-CoT SFT of BAGEL on one machine: all visible GPUs (or NPROC_PER_NODE of them; CPU: one process).
#   bash scripts/train_sft_edit_single_node.sh configs/sft/meta_cot.yaml [section.key=value ...]
#   bash scripts/train_sft_edit_single_node.sh configs/sft/tiny_cpu.yaml        # the tiny model on a laptop
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=${MASTER_PORT:-29500} exec bash scripts/train_sft_edit.sh "$@"
