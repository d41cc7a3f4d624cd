#!/usr/bin/env bash
# Flow-GRPO (Meta-CoT stage 2) of BAGEL's generation expert, on one or many nodes. Same command on every node:
#   NNODES=4 NODE_RANK=<0..3> MASTER_ADDR=<node 0 host> bash scripts/train_rl_cec.sh configs/rl/cec.yaml [key=value ...]
# Environment (defaults: one node): NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1
#   MASTER_PORT (default: 29500 on several nodes, a free port on one node)
#   NPROC_PER_NODE = training processes per node (default: all visible GPUs, or 1 without CUDA)
# The config path is taken relative to the current directory; paths inside the config (model.model_dir, data.paths,
# output_dir) relative to the repository root. Overrides after the config are dotted keys, e.g.
#   train.total_steps=100 output_dir=runs/x reward.kind=shapes_exact rollout.group_size=8
# Reward judge server (reward.server.mode): none, external (reward.server.url is checked before training starts),
# or vllm (node 0 starts one on reward.server.gpus; keep those GPUs out of the training processes, e.g. with
# CUDA_VISIBLE_DEVICES and NPROC_PER_NODE). A restarted run resumes from <output_dir>/checkpoints.
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  [ $# -ge 1 ] && exit 0 || exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3
CONFIG="$1"
shift
if [ ! -f "$CONFIG" ]; then
  echo "error: config file $CONFIG not found (relative to $(pwd)); e.g. configs/rl/cec.yaml" >&2
  exit 2
fi
CONFIG="$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")"
cd "$ROOT"
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
if [ -z "${MASTER_PORT:-}" ]; then
  if [ "$NNODES" = 1 ]; then
    MASTER_PORT=$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  else
    MASTER_PORT=29500
  fi
fi
NPROC_PER_NODE=${NPROC_PER_NODE:-$(( GPUS > 0 ? GPUS : 1 ))}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
exec "$PY" -m torch.distributed.run \
  --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$NPROC_PER_NODE" \
  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
  -m train.rl.main "$CONFIG" "$@"
