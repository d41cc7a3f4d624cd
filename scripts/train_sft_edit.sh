#!/usr/bin/env bash
# Meta-CoT SFT of BAGEL on one or many nodes (FSDP2). Run the same command on every node:
#   NNODES=6 NODE_RANK=<0..5> MASTER_ADDR=<node 0 host> bash scripts/train_sft_edit.sh configs/sft/meta_cot.yaml [key=value ...]
# Environment (defaults: one node): NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500
# NPROC_PER_NODE = GPUs per node (default: all visible GPUs, or 1 without CUDA).
# Overrides after the config are dotted keys, e.g. optim.lr=1e-5 train.total_steps=100 output_dir=runs/x.
# A run resumes from the newest complete checkpoint in <output_dir>/checkpoints when restarted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ $# -lt 1 ]; then
  echo "usage: bash scripts/train_sft_edit.sh CONFIG.yaml [section.key=value ...]" >&2
  exit 2
fi
GPUS=$(python3 -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
NPROC_PER_NODE=${NPROC_PER_NODE:-$(( GPUS > 0 ? GPUS : 1 ))}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
exec python3 -m torch.distributed.run \
  --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$NPROC_PER_NODE" \
  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
  -m train.sft.main "$@"
