#!/usr/bin/env bash
# Install the service into .venv, create its SQLite schema, seed the plans and serve it on
# http://127.0.0.1:8000 (local billing, cookies over plain http) with the mail worker beside it.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements.txt

export FLASK_APP=wsgi
export SESSION_COOKIE_SECURE="${SESSION_COOKIE_SECURE:-0}"
export BILLING_PROVIDER="${BILLING_PROVIDER:-local}"
export INTERNAL_API_TOKEN="${INTERNAL_API_TOKEN:-dev-internal-token}"
flask db upgrade
flask seed-plans
# The mail worker sends what the service writes to its outbox; with the default MAIL_URL
# (log://) each message, links included, is one JSON line on this terminal.
flask mail-worker &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null' EXIT
echo "SmartCV Account on http://127.0.0.1:${PORT:-8000} (Ctrl-C stops it)"
gunicorn --bind "127.0.0.1:${PORT:-8000}" wsgi:app
