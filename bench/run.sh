#!/usr/bin/env bash
# The benchmark's one command: install what it needs, then run bench/run.py as `python -m bench.run` (arguments pass on).
#   bench/run.sh                      # the full measurement: SQLite and PostgreSQL, 3 rounds
#   bench/run.sh --duration 2 --pairs 1 --databases sqlite     # a quick look
# Needs: Python 3.11+, and for the PostgreSQL half a server at BENCH_PG_URL
# (default postgresql://postgres@127.0.0.1:5432/smartcv_bench; the script creates and drops
# that database). wrk comes from the distribution's packages; without it (no apt-get, not
# root) the benchmark falls back to its own Python load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements.txt
stamp=".venv/.installed-bench-requirements.txt"
if [ ! -f "$stamp" ] || [ bench/requirements.txt -nt "$stamp" ]; then
    python -m pip install --quiet -r bench/requirements.txt
    touch "$stamp"
fi
if ! command -v wrk >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null || true
    elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
        sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null || true
    fi
fi
exec python -m bench.run "$@"
