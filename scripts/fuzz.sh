#!/usr/bin/env bash
# Fuzz the running service from its own OpenAPI document with schemathesis.
#
# Starts gunicorn on a free loopback port over a fresh, migrated SQLite file, registers a user
# for a session cookie, and lets schemathesis generate requests for every documented operation
# (with that cookie and the internal API's bearer token). Fails on any 5xx and on any response
# that does not match the document. Bounded: FUZZ_MAX_EXAMPLES cases per operation (default 25)
# and FUZZ_MAX_TIME seconds for the main run (default 45); FUZZ_CHECKS picks other checks
# (`all` for an exploratory run). Prints the number of generated cases.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
    source scripts/venv.sh requirements-dev.txt
fi

max_examples="${FUZZ_MAX_EXAMPLES:-25}"
max_time="${FUZZ_MAX_TIME:-45}"
checks="${FUZZ_CHECKS:-not_a_server_error,response_schema_conformance,status_code_conformance}"
workdir="$(mktemp -d)"
gunicorn_pid=""
cleanup() {
    if [ -n "$gunicorn_pid" ] && kill -0 "$gunicorn_pid" 2>/dev/null; then
        kill -TERM "$gunicorn_pid"
        wait "$gunicorn_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

export FLASK_APP=wsgi
export SMARTCV_ENV=development
export DATABASE_URL="sqlite:///$workdir/fuzz.db"
export SECRET_KEY="fuzz-secret-key-$(python -c 'import secrets; print(secrets.token_hex(16))')"
export INTERNAL_API_TOKEN="fuzz-internal-$(python -c 'import secrets; print(secrets.token_hex(16))')"
export SESSION_COOKIE_SECURE=0
export BCRYPT_ROUNDS=4
export BILLING_PROVIDER=local
# The limits are tested elsewhere; here they would only turn the fuzzer's requests into 429s.
export RATELIMIT_ENABLED="${FUZZ_RATELIMIT_ENABLED:-0}"

flask db upgrade >"$workdir/setup.log" 2>&1 || { cat "$workdir/setup.log"; exit 1; }
if flask --help 2>/dev/null | grep -q "seed-plans"; then
    flask seed-plans >>"$workdir/setup.log" 2>&1 || { cat "$workdir/setup.log"; exit 1; }
fi

port="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
gunicorn --config gunicorn.conf.py --workers 2 --bind "127.0.0.1:$port" wsgi:app \
    >"$workdir/gunicorn.log" 2>&1 &
gunicorn_pid=$!

# Wait for /healthz, then sign a user up for the session cookie the fuzzer will send.
cookie="$(python - "$base" <<'EOF'
import sys, time, requests
base = sys.argv[1]
deadline = time.monotonic() + 60
while True:
    try:
        if requests.get(base + "/healthz", timeout=2).status_code == 200:
            break
    except requests.ConnectionError:
        pass
    if time.monotonic() > deadline:
        sys.exit("gunicorn did not become healthy")
    time.sleep(0.2)
response = requests.post(base + "/api/auth/register", timeout=10, json={
    "email": "fuzzer@example.com", "password": "correct horse battery staple", "name": "Fuzzer"})
response.raise_for_status()
print(response.cookies["smartcv_session"])
EOF
)" || { cat "$workdir/gunicorn.log"; exit 1; }

run_schemathesis() {
    # Any arguments select or drop operations; the output goes to the terminal and a file.
    # --max-time would keep fuzzing until the budget is spent; `timeout` only caps a slow run.
    timeout "$1" schemathesis run "$base/api/openapi.json" \
        --checks "$checks" \
        --header "Cookie: smartcv_session=$cookie" \
        --header "Authorization: Bearer $INTERNAL_API_TOKEN" \
        --generation-with-security-parameters false \
        --generation-database none \
        --max-examples "$max_examples" \
        --seed "${FUZZ_SEED:-20261126}" \
        --workers 2 \
        --no-color \
        "${@:2}" | tee -a "$workdir/schemathesis.out"
}

cd "$workdir"  # schemathesis writes its reports under the current directory
status=0
# Logout revokes the fuzzer's own session, so it runs last, on its own.
run_schemathesis "$max_time" --exclude-path /api/auth/logout || status=$?
run_schemathesis 30 --include-path /api/auth/logout || status=$?

cases="$(grep -Eo '[0-9]+ generated' "$workdir/schemathesis.out" \
    | awk '{ total += $1 } END { print total + 0 }')"
echo "fuzz: $cases generated cases"
if [ "$status" -ne 0 ]; then
    echo "fuzz: FAILED (exit $status); gunicorn log follows" >&2
    tail -n 50 "$workdir/gunicorn.log" >&2
fi
exit "$status"
