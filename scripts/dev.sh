#!/usr/bin/env bash
# One entry point for a fresh machine:
#   scripts/dev.sh run [ARGS]   install if needed, then start dynamo-wizard (the sandbox when there are
#                               no AWS credentials)
#   scripts/dev.sh test [ARGS]  install everything the tests need, then run the test suite
#   scripts/dev.sh bench [ARGS] install, then run the benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
stamp="$VENV/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"

install_python() {
  if [ ! -x "$VENV/bin/python" ]; then "$PY" -m venv "$VENV"; fi
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    touch "$stamp"
  fi
}

install_system() {
  if ! command -v tmux >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq tmux >/dev/null; \
    else sudo apt-get update -qq && sudo apt-get install -y -qq tmux >/dev/null; fi
  fi
  PYTHON="$VENV/bin/python" bash scripts/get-k8s-tools.sh "$ROOT/.tools/bin" >/dev/null
}

cmd="${1:-run}"; shift || true
case "$cmd" in
  run)
    install_python
    if "$VENV/bin/python" -m dynamo_wizard.cloud.credentials --check >/dev/null 2>&1; then
      exec "$VENV/bin/dynamo-wizard" "$@"
    else
      echo "No AWS credentials found: starting the sandbox (simulated AWS and cluster, nothing is billed)." >&2
      exec "$VENV/bin/dynamo-wizard" --sandbox "$@"
    fi ;;
  test)
    install_python; install_system
    export PATH="$ROOT/.tools/bin:$PATH"
    # Test files run in parallel (TEST_WORKERS=0: in this process). Many tests wait on the sandbox's
    # scaled clock, so more workers than cores still helps; a file's tests stay together (they share
    # module-scoped sandboxes). An explicit -n in ARGS wins.
    workers="${TEST_WORKERS:-3}"
    parallel=()
    case " $* " in *" -n "*|*" -n"[0-9]*|*" --numprocesses"*) ;; *)
      if [ "$workers" != 0 ]; then parallel=(-n "$workers" --dist loadfile); fi ;; esac
    exec "$VENV/bin/python" -m pytest "${parallel[@]}" "$@" ;;
  bench)
    install_python; install_system
    export PATH="$ROOT/.tools/bin:$PATH"
    exec "$VENV/bin/python" -m bench "$@" ;;
  *) echo "usage: scripts/dev.sh run|test|bench [ARGS]" >&2; exit 2 ;;
esac
