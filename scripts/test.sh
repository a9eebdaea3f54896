#!/usr/bin/env bash
# Install the service and its test tools into .venv and run the whole test suite.
# Extra arguments go to pytest. With DATABASE_URL set, the suite runs on that database.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements-dev.txt
exec python -m pytest "$@"
