#!/usr/bin/env bash
# Install the test tools into .venv and check the whole tree with ruff: the lint rules
# (ruff.toml) and the format. `.venv/bin/ruff format .` rewrites what the second check refuses.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements-dev.txt
ruff check .
ruff format --check .
