#!/usr/bin/env bash
# Fetch public editing benchmarks with huggingface_hub and convert them to the common folder format.
# Usage: bash scripts/download_bench.sh [gedit|imgedit|21tasks|all] [ROOT=data/bench]
#   gedit   -> ROOT/gedit_en, ROOT/gedit_cn   (stepfun-ai/GEdit-Bench)
#   imgedit -> ROOT/imgedit                   (sysuyy/ImgEdit, Benchmark.tar, singleturn set + judge prompts)
#   21tasks -> ROOT/21tasks                   (HF id unverified; override with TASKS21_REPO=... or convert a local
#              CSV folder: python scripts/bench_data/convert_21tasks.py --csv-dir DIR --out ROOT/21tasks)
# ShapesEdit is generated locally (data/shapes_edit), not downloaded.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WHICH=${1:-all}
ROOT=${2:-data/bench}
PY=${PYTHON:-python3}
mkdir -p "$ROOT"
case "$WHICH" in
  gedit|all) "$PY" scripts/bench_data/convert_gedit.py --out-root "$ROOT" ;;&
  imgedit|all) "$PY" scripts/bench_data/convert_imgedit.py --out "$ROOT/imgedit" ;;&
  21tasks|all) "$PY" scripts/bench_data/convert_21tasks.py --out "$ROOT/21tasks" \
                 --repo "${TASKS21_REPO:-shiyi0408/Meta-CoT-21-Tasks-Bench}" ;;
  gedit|imgedit) ;;
  *) echo "unknown benchmark '$WHICH'; use gedit, imgedit, 21tasks or all" >&2; exit 2 ;;
esac
