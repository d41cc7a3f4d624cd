#!/usr/bin/env bash
# Meta-CoT SFT of BAGEL on one machine: all visible GPUs (or NPROC_PER_NODE of them; CPU: one process).
#   bash scripts/train_sft_edit_single_node.sh CONFIG.yaml [section.key=value ...]
#   bash scripts/train_sft_edit_single_node.sh configs/sft/meta_cot.yaml      # BAGEL-7B-MoT from ckpts/bagel
#   bash scripts/train_sft_edit_single_node.sh configs/sft/tiny_cpu.yaml      # the tiny model on a laptop
# The rendezvous port is MASTER_PORT, else 29500 when free, else one the OS picks (runs side by side do not clash).
# Paths: as scripts/train_sft_edit.sh (CONFIG and path overrides relative to where you run this).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if wants_help "$@"; then usage "$0"; exit 0; fi
MASTER_PORT=${MASTER_PORT:-$("$PY" "$ROOT/scripts/launch.py" free-port)}
NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$MASTER_PORT exec bash "$ROOT/scripts/train_sft_edit.sh" "$@"
