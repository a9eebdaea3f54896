#!/usr/bin/env bash
# Run every reliability scenario and write its figures to reliability/results/*.json.
#   bash reliability/run.sh          all scenarios (pytest ones, races, stuffing, timing,
#                                    worker crash, and the PostgreSQL outage last)
#   bash reliability/run.sh --ci     the ones CI runs after the test suites: races over HTTP,
#                                    stuffing, worker crash, outage
#   bash reliability/run.sh NAME...  only those scenarios (pytest concurrency stuffing timing
#                                    worker_crash outage)
# Loopback only; each scenario is bounded (about 10-40 s; the outage waits, up to 20 minutes,
# for other users of the shared PostgreSQL server to finish). Exit status: failed scenarios.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

restart_postgres() {
    # Second line of defence behind outage.py's finally: never leave PostgreSQL down.
    if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
        echo "PostgreSQL is down after a scenario: starting it"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort | tail -1)" main start
    fi
}
trap restart_postgres EXIT INT TERM

case "${1:-}" in
    --ci) scenarios=(concurrency stuffing worker_crash outage) ;;
    "") scenarios=(pytest concurrency stuffing timing worker_crash outage) ;;
    *) scenarios=("$@") ;;
esac

mkdir -p reliability/results
failed=()
for name in "${scenarios[@]}"; do
    echo "=== reliability: $name ==="
    started=$(date +%s)
    if [ "$name" = pytest ]; then
        $PY -m pytest -q -p no:cacheprovider tests/test_reliability_concurrency.py \
            tests/test_abuse.py tests/test_usage.py::test_concurrent_calls_never_overshoot_the_limit \
            tests/test_subscription_concurrency.py \
            tests/test_webhooks.py::test_concurrent_deliveries_of_one_event_apply_it_once \
            tests/test_rate_limits.py --junitxml=reliability/results/pytest.xml
        status=$?
    else
        timeout 1500 $PY -m "reliability.$name"
        status=$?
    fi
    echo "--- $name: exit $status in $(( $(date +%s) - started )) s"
    [ "$status" -eq 0 ] || failed+=("$name")
    restart_postgres
done

$PY - <<'PYEOF'
import json, pathlib
results = pathlib.Path("reliability/results")
summary = {p.stem: json.loads(p.read_text()) for p in sorted(results.glob("*.json"))
           if p.stem != "summary"}
(results / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
print("summary:", {name: figures.get("passed") for name, figures in summary.items()})
PYEOF

if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all reliability scenarios passed"
