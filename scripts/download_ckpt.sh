#!/usr/bin/env bash
# Download the official BAGEL-7B-MoT folder (ema.safetensors, ae.safetensors, configs, tokenizer) with huggingface_hub.
# Usage: bash scripts/download_ckpt.sh [TARGET_DIR] [REPO_ID]     (run on a machine with internet access)
set -euo pipefail
TARGET=${1:-models/BAGEL-7B-MoT}
REPO=${2:-ByteDance-Seed/BAGEL-7B-MoT}
PY=${PYTHON:-python3}
"$PY" - "$TARGET" "$REPO" <<'PY'
import sys
from huggingface_hub import snapshot_download

target, repo = sys.argv[1], sys.argv[2]
path = snapshot_download(repo_id=repo, local_dir=target,
                         allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.py", "*.md"])
print(f"downloaded {repo} to {path}")
PY
"$PY" "$(dirname "$0")/check_reference.py" --help >/dev/null  # the repo imports work
echo "check it loads: python inference/edit_single.py --model-path $TARGET --image IN.png --instruction '...' --out OUT.png"
