#!/usr/bin/env bash
# Install the service into .venv, create its SQLite schema, seed the plans and serve it on
# http://127.0.0.1:8000 (local billing, cookies over plain http). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements.txt

export FLASK_APP=wsgi
export SESSION_COOKIE_SECURE="${SESSION_COOKIE_SECURE:-0}"
export BILLING_PROVIDER="${BILLING_PROVIDER:-local}"
export INTERNAL_API_TOKEN="${INTERNAL_API_TOKEN:-dev-internal-token}"
flask db upgrade
flask seed-plans
echo "SmartCV Account on http://127.0.0.1:${PORT:-8000} (Ctrl-C stops it)"
exec gunicorn --bind "127.0.0.1:${PORT:-8000}" wsgi:app
