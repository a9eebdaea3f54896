#!/usr/bin/env bash
# Fuzz the running service from its own OpenAPI document with schemathesis, signed in.
#
# Starts gunicorn on a free loopback port over a fresh, migrated SQLite file and registers a
# user, then lets schemathesis generate requests for every documented operation in two passes:
#
# 1. signed-in: every operation but those that end the session they are sent with, all with
#    that user's session cookie (and the internal API's bearer token). First the stateful
#    phase, over the operations the document's links join (register -> account -> change it,
#    subscribe -> read -> change), then the examples, coverage and fuzzing phases over all of
#    them. The session must still be live at the end.
# 2. session-ending: logout, login (it ends the session its cookie names), revoking a session
#    (after listing them: the link), deleting the account and changing the password; each case
#    gets a session of its own (scripts/fuzz_hooks.py).
#
# Fails on any 5xx, on any response that does not match the document, when the signed-in
# session died, when an operation that needs a session only ever answered 401 or was never
# called, and when the stateful phase followed none of the document's links
# (scripts/fuzz_report.py, which prints each operation's status counts and each link's use).
# Bounded: FUZZ_MAX_EXAMPLES cases per operation (default 25; four times as many stateful
# scenarios) and FUZZ_MAX_TIME seconds per schemathesis run (default 45; three runs);
# FUZZ_CHECKS picks other checks (`all` for an exploratory run).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
    source scripts/venv.sh requirements-dev.txt
fi

max_examples="${FUZZ_MAX_EXAMPLES:-25}"
max_time="${FUZZ_MAX_TIME:-45}"
checks="${FUZZ_CHECKS:-not_a_server_error,response_schema_conformance,status_code_conformance}"
# The operations whose success ends the session they are sent with.
session_ending='^(logout|login|revokeSession|deleteAccount|updateSecurity)$'
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
export FUZZ_BASE="http://127.0.0.1:$port"
gunicorn --config gunicorn.conf.py --workers 2 --bind "127.0.0.1:$port" wsgi:app \
    >"$workdir/gunicorn.log" 2>&1 &
gunicorn_pid=$!

# The fuzzer's account. Its password is not the document's example, so no generated request
# can sign in as it, delete it or change its password.
export FUZZ_EMAIL="fuzzer@example.com"
export FUZZ_PASSWORD="fuzzer's own $(python -c 'import secrets; print(secrets.token_hex(8))')"
# Wait for /healthz, then sign the user up for the session cookie of the signed-in pass.
cookie="$(python - <<'EOF'
import os, sys, time, requests
base = os.environ["FUZZ_BASE"]
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
    "email": os.environ["FUZZ_EMAIL"], "password": os.environ["FUZZ_PASSWORD"], "name": "Fuzzer"})
response.raise_for_status()
cookie = response.cookies["smartcv_session"]
# A verified address, as a real user's, so that what needs one (creating a team, whose links
# the stateful phase then follows) is reached too: the link's token waits in the outbox.
import sqlite3
with sqlite3.connect(os.environ["DATABASE_URL"].removeprefix("sqlite:///")) as database:
    (token,) = database.execute(
        "SELECT link_token FROM mail_outbox WHERE kind = 'verify_email'").fetchone()
verified = requests.post(base + "/api/auth/verify-email", json={"token": token}, timeout=10)
verified.raise_for_status()
print(cookie)
EOF
)" || { cat "$workdir/gunicorn.log"; exit 1; }
python -c 'import os, requests
print(requests.get(os.environ["FUZZ_BASE"] + "/api/openapi.json", timeout=10).text)' \
    >"$workdir/openapi.json"

root="$PWD"
export SCHEMATHESIS_HOOKS="$root/scripts/fuzz_hooks.py"
# No request cache between the runs: schemathesis would replay what one pass found in the next
# without that pass's session (a signed-in request replayed in the session-ending pass is a 401
# that says nothing), and each run is meant to stand on its own seed.
printf '[cache]\nenabled = false\n' >"$workdir/schemathesis.toml"
export FUZZ_RECORD="$workdir/statuses.tsv"
run_schemathesis() {
    # $1 names the pass, $2 is `fresh` for a session per case, $3 the cases per operation (or
    # scenarios); the other arguments select operations. The output goes to the terminal and a
    # file. `timeout` caps a slow run.
    FUZZ_PASS="$1" FUZZ_SESSIONS="$2" timeout "$max_time" \
        schemathesis --config-file "$workdir/schemathesis.toml" run "$FUZZ_BASE/api/openapi.json" \
        --checks "$checks" \
        --header "Authorization: Bearer $INTERNAL_API_TOKEN" \
        --generation-with-security-parameters false \
        --generation-database none \
        --max-examples "$3" \
        --seed "${FUZZ_SEED:-20261126}" \
        --workers 2 \
        --no-color \
        --report ndjson --report-dir "$workdir/reports/$1" \
        "${@:4}" | tee -a "$workdir/schemathesis.out"
}

cd "$workdir"  # schemathesis writes its reports under the current directory
status=0
# The stateful phase runs first, while the account has no subscription yet, so that a scenario
# can create one and follow the links from it; its scenarios start from the operations the
# document's links join. Selecting every operation by name keeps GET /api/openapi.json in the
# other phases: schemathesis leaves out the operation that serves the document it loaded unless
# it is selected so.
linked="$(python "$root/scripts/fuzz_report.py" linked "$workdir/openapi.json")"
run_schemathesis signed-in shared $((max_examples * 4)) --phases stateful \
    --header "Cookie: smartcv_session=$cookie" \
    --include-operation-id-regex "$linked" --exclude-operation-id-regex "$session_ending" \
    || status=$?
run_schemathesis signed-in shared "$max_examples" --phases examples,coverage,fuzzing \
    --header "Cookie: smartcv_session=$cookie" \
    --include-operation-id-regex . --exclude-operation-id-regex "$session_ending" || status=$?
# The signed-in pass is worth something only if its session lived to the end.
session="$(python -c 'import os, sys, requests
answer = requests.get(os.environ["FUZZ_BASE"] + "/api/account", timeout=10,
                      cookies={"smartcv_session": sys.argv[1]})
print(answer.status_code)' "$cookie")"
if [ "$session" != "200" ]; then
    echo "fuzz: FAILED: the signed-in pass's session is gone (GET /api/account: $session)"
    status=1
fi
run_schemathesis session-ending fresh "$max_examples" \
    --include-operation-id-regex "$session_ending|^listSessions$" || status=$?

cases="$(grep -Eo '[0-9]+ generated' "$workdir/schemathesis.out" \
    | awk '{ total += $1 } END { print total + 0 }')"
echo "fuzz: $cases generated cases"
python "$root/scripts/fuzz_report.py" report "$FUZZ_RECORD" "$workdir/openapi.json" \
    "$workdir/reports" || status=1
if [ "$status" -ne 0 ]; then
    echo "fuzz: FAILED (exit $status); gunicorn log follows" >&2
    tail -n 50 "$workdir/gunicorn.log" >&2
fi
exit "$status"
