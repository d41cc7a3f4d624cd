#!/usr/bin/env bash
# Example training data for data/configs/reasonedit_example.yaml: edits with their Meta-CoT, plain edits and
# questions about the source image, in the training record layout (data/sample_schema.py).
#   bash scripts/download_example_data.sh [--out DIR] [--num-samples N] [--size PX] [--workers N]
# The Meta-CoT repository's own example data was not published when this was written, so the examples are made
# here, offline: ShapesEdit samples (exact Meta-CoTs; data/shapes_edit). Default: 1000 samples (3000 rows) in
# ${METACOT_DATA_ROOT:-<repo>/datasets}/example, where the example mix reads them. Hub datasets:
# python scripts/data/download_hf.py --repo-id ORG/NAME --out DIR.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if wants_help "$@"; then usage "$0"; exit 0; fi
OUT=${METACOT_DATA_ROOT:-$ROOT/datasets}/example
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m scripts.shapes_edit.generate --out "$OUT" \
  --num-samples 1000 --workers 2 "$@"
