#!/usr/bin/env bash
# Fetch public editing benchmarks with huggingface_hub and convert them to the common folder format.
#   bash scripts/download_bench.sh [gedit|imgedit|21tasks|all] [ROOT]     (default: all, ROOT data/bench of the repo)
#   gedit   -> ROOT/gedit_en, ROOT/gedit_cn   (stepfun-ai/GEdit-Bench)
#   imgedit -> ROOT/imgedit                   (sysuyy/ImgEdit, Benchmark.tar, singleturn set + judge prompts)
#   21tasks -> ROOT/21tasks                   (HF id unverified; override with TASKS21_REPO=... or convert a local
#              CSV folder: python scripts/bench_data/convert_21tasks.py --csv-dir DIR --out ROOT/21tasks);
#              its categories are checked against the fixed list (inference/benchmark/tasks21_categories.py)
# ShapesEdit is generated locally (python -m scripts.shapes_edit.generate), not downloaded.
# A ROOT given is relative to where you run this.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if wants_help "$@"; then usage "$0"; exit 0; fi
WHICH=${1:-all}
BENCH_ROOT=${2:-$ROOT/data/bench}
case "$WHICH" in
  gedit|imgedit|21tasks|all) ;;
  *) echo "error: unknown benchmark '$WHICH'; use gedit, imgedit, 21tasks or all (--help)" >&2; exit 2 ;;
esac
status=0
if [ "$WHICH" = gedit ] || [ "$WHICH" = all ]; then
  "$PY" "$ROOT/scripts/bench_data/convert_gedit.py" --out-root "$BENCH_ROOT" || status=1
fi
if [ "$WHICH" = imgedit ] || [ "$WHICH" = all ]; then
  "$PY" "$ROOT/scripts/bench_data/convert_imgedit.py" --out "$BENCH_ROOT/imgedit" || status=1
fi
if [ "$WHICH" = 21tasks ] || [ "$WHICH" = all ]; then
  "$PY" "$ROOT/scripts/bench_data/convert_21tasks.py" --out "$BENCH_ROOT/21tasks" \
    --repo "${TASKS21_REPO:-shiyi0408/Meta-CoT-21-Tasks-Bench}" || status=1
fi
exit $status
