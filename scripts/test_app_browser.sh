#!/usr/bin/env bash
# The web app's browser test with everything it needs: installs Debian's chromium + chromium-driver (apt) and
# requirements-app.txt (gradio, selenium) into the project's venv, then runs tests/test_app_browser.py (app.py on
# the tiny checkpoint on the CPU, driven by headless Chromium). Prints how long each part took.
#
# Usage: bash scripts/test_app_browser.sh [--no-install] [PYTEST_ARGS...]
#   --no-install   only run the test (fails if chromium, chromedriver, gradio or selenium is missing)
#   PYTHON=...     another interpreter instead of the project's .venv/bin/python
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
INSTALL=1
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --no-install) INSTALL=0; shift ;;
esac
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
if [ ! -x "$PY" ]; then
  echo "error: $PY not found; run 'bash env.sh' first (or set PYTHON)" >&2
  exit 1
fi

start=$SECONDS
apt_s=0
pip_s=0
if [ "$INSTALL" = 1 ]; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  apt_s=$((SECONDS - start))
  "$PY" -m pip install -q -r "$ROOT/requirements-app.txt"
  pip_s=$((SECONDS - start - apt_s))
fi
for tool in chromium chromedriver; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing; run without --no-install" >&2; exit 1; }
done
"$PY" -c "import gradio, selenium" 2>/dev/null \
  || { echo "error: gradio or selenium is missing in $PY; run without --no-install" >&2; exit 1; }

cd "$ROOT"
test_start=$SECONDS
"$PY" -m pytest -q -rs tests/test_app_browser.py "$@"
echo "browser test: apt ${apt_s}s, pip ${pip_s}s, test $((SECONDS - test_start))s, total $((SECONDS - start))s" >&2
