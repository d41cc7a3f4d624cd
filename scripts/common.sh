# Sourced by the scripts in this folder: the repository root, the project's Python and --help from the header.
#   ROOT  the repository (scripts never change the caller's directory unless they say so)
#   PY    .venv/bin/python when env.sh has made it, else $PYTHON or python3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "$ROOT/.venv/bin/python" ]; then
  PY="$ROOT/.venv/bin/python"
else
  PY=${PYTHON:-python3}
fi

# The calling script's header comment (the lines after the shebang that start with '#'), as usage text.
usage() {
  sed -n '2,/^[^#]/{/^#/{s/^# \{0,1\}//;p}}' "$1"
}

# True when -h or --help is among the arguments.
wants_help() {
  local arg
  for arg in "$@"; do
    case "$arg" in -h|--help) return 0 ;; esac
  done
  return 1
}
