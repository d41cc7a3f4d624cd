#!/usr/bin/env bash
# Meta-CoT SFT of BAGEL on one or many nodes (FSDP2). Run the same command on every node:
#   NNODES=6 NODE_RANK=<0..5> MASTER_ADDR=<node 0 host> bash scripts/train_sft_edit.sh CONFIG.yaml [key=value ...]
# Environment (defaults: one node): NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500
# NPROC_PER_NODE = processes per node (default: all visible GPUs, or 1 without CUDA).
# Overrides after the config are dotted keys, e.g. optim.lr=1e-5 train.total_steps=100 output_dir=runs/x.
# CONFIG and path overrides are relative to where you run this; paths inside the config to the repository.
# A model.model_dir of ckpts/bagel that is missing is downloaded first (scripts/download_ckpt.sh).
# A run resumes from the newest complete checkpoint in <output_dir>/checkpoints when restarted.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if wants_help "$@"; then usage "$0"; exit 0; fi
if [ $# -lt 1 ]; then usage "$0" >&2; exit 2; fi
RESOLVED=$("$PY" "$ROOT/scripts/launch.py" sft-args "$PWD" "$@")
mapfile -t ARGS <<< "$RESOLVED"
cd "$ROOT"
"$PY" -m train.sft.main --prepare "${ARGS[@]}"  # one-line config errors, the base checkpoint fetched once per node
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
NPROC_PER_NODE=${NPROC_PER_NODE:-$(( GPUS > 0 ? GPUS : 1 ))}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
exec "$PY" -m torch.distributed.run \
  --nnodes "${NNODES:-1}" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$NPROC_PER_NODE" \
  --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" \
  -m train.sft.main "${ARGS[@]}"
