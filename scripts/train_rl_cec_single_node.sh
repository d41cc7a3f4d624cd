#!/usr/bin/env bash
# Flow-GRPO on one machine: all visible GPUs (or NPROC_PER_NODE of them; CPU: one process), a free port.
#   bash scripts/train_rl_cec_single_node.sh configs/rl/cec.yaml [section.key=value ...]
#   bash scripts/train_rl_cec_single_node.sh configs/rl/tiny_cpu.yaml     # the tiny model on a laptop
# Everything else as scripts/train_rl_cec.sh (see its --help).
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  [ $# -ge 1 ] && exit 0 || exit 2
fi
NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 exec bash "$(dirname "${BASH_SOURCE[0]}")/train_rl_cec.sh" "$@"
