"""Scenario 1: stop PostgreSQL under load for a few seconds, then start it again.

While it is down every request must answer 503 SERVICE_UNAVAILABLE in the contract's envelope;
once it is back the same gunicorn (no restart) must serve again, and every write acknowledged
with a 2xx must be in the database. PostgreSQL is shared with other people on this machine, so
the scenario first waits until no other database has an open session, and it always starts the
server again (finally block; reliability/run.sh's trap as a second line).

Run: `.venv/bin/python -m reliability.outage` (about 30 s plus any wait). Exits non-zero on failure.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import requests

from .common import (
    INTERNAL_TOKEN,
    PASSWORD,
    database_name,
    ensure_postgres_running,
    gunicorns,
    scratch_database,
    service_env,
    start_postgres,
    stop_postgres,
    terminate_on_sigterm,
    wait_until_postgres_idle,
    write_result,
)
from .load import Load, is_envelope

DOWN_SECONDS = 5
STEADY_SECONDS = 4
AFTER_SECONDS = 8


@dataclass
class Probe:
    """One probe request: which kind, when it was sent and answered, and the answer."""

    kind: str
    sent: float
    answered: float
    status: int | str
    code: str | None
    envelope: bool


class Prober:
    """Send each kind of request in turn, as fast as answers come, and record them."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.probes: list[Probe] = []
        self._stop = threading.Event()
        email = f"probe-{time.time_ns()}@example.com"
        response = requests.post(
            base_url + "/api/auth/register",
            json={"email": email, "password": PASSWORD, "name": "Probe"},
            timeout=10,
        )
        response.raise_for_status()
        self.email = email
        self.user_id = response.json()["data"]["id"]
        self.cookie = {"Cookie": "smartcv_session=" + response.cookies["smartcv_session"]}
        self.kinds = {
            "GET /api/account": ("GET", "/api/account", None, self.cookie),
            "PUT /api/account": ("PUT", "/api/account", {"name": "Probe"}, self.cookie),
            "GET /api/account/subscription": (
                "GET",
                "/api/account/subscription",
                None,
                self.cookie,
            ),
            "POST /api/auth/login": (
                "POST",
                "/api/auth/login",
                {"email": email, "password": PASSWORD},
                {},
            ),
            "POST internal usage": (
                "POST",
                f"/api/internal/users/{self.user_id}/usage",
                {"metric": "apiRequests", "delta": 1},
                {"Authorization": f"Bearer {INTERNAL_TOKEN}"},
            ),
            "GET /healthz": ("GET", "/healthz", None, {}),
        }
        self._thread = threading.Thread(target=self._run, name="prober")

    def start(self) -> None:
        """Start probing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop probing."""
        self._stop.set()
        self._thread.join(20)

    def _run(self) -> None:
        while not self._stop.is_set():
            for kind, (method, path, body, headers) in self.kinds.items():
                sent = time.monotonic()
                try:
                    response = requests.request(
                        method, self.base_url + path, json=body, headers=headers, timeout=10
                    )
                    status, envelope = response.status_code, is_envelope(response)
                    code = response.json().get("code") if envelope else None
                except requests.RequestException as error:
                    status, envelope, code = type(error).__name__, False, None
                self.probes.append(Probe(kind, sent, time.monotonic(), status, code, envelope))
            time.sleep(0.1)


def main() -> int:
    """Run the scenario, write reliability/results/outage.json, return the exit status."""
    terminate_on_sigterm()
    env_overrides = {"DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "5"}
    with scratch_database("outage") as url, gunicorns(service_env(url, **env_overrides)) as (g,):
        waited = wait_until_postgres_idle(database_name(url))
        prober = Prober(g.url)
        load = Load(g.url, threads=6, max_seconds=120)
        load.start()
        prober.start()
        try:
            time.sleep(STEADY_SECONDS)
            waited += wait_until_postgres_idle(database_name(url))
            stop_began = time.monotonic()
            try:
                stop_postgres()
                stopped = time.monotonic()
                time.sleep(DOWN_SECONDS)
            finally:
                restarting = time.monotonic()
                ready = start_postgres()
            time.sleep(AFTER_SECONDS)
        finally:
            prober.stop()
            load.stop()
            ensure_postgres_running()
        writes = load.verify(url)
        gunicorn_pid_unchanged = g.process.poll() is None
        # The server's own account of any unexpected failure (its log goes with gunicorn).
        lines = g.log().splitlines()
        errors = [
            line[:300]
            for index, line in enumerate(lines)
            if "Error handling request" in line
            for line in lines[index : index + 60]
            if not line.startswith("{")
        ][:120]
    window = (stop_began, stopped, restarting, ready)
    return report(load, prober, writes, waited, window, gunicorn_pid_unchanged, errors)


def report(load, prober, writes, waited, window, same_gunicorn, errors) -> int:
    """Work out the figures and the verdict from what the load and the prober saw.

    "Down" is from the stop command's return to the start command's call: PostgreSQL accepts
    connections again part-way through the start command.
    """
    stop_began, stopped, restarting, ready = window
    down = [p for p in prober.probes if p.sent >= stopped and p.answered <= restarting]
    down_by_kind = {
        kind: dict(Counter(f"{p.status} {p.code}" for p in down if p.kind == kind))
        for kind in prober.kinds
    }
    down_ok = all(p.status == 503 and p.code == "SERVICE_UNAVAILABLE" for p in down) and all(
        down_by_kind.values()
    )
    recovery = {}
    for kind in prober.kinds:
        first = next(
            (
                p
                for p in prober.probes
                if p.kind == kind
                and p.sent >= ready
                and isinstance(p.status, int)
                and p.status < 300
            ),
            None,
        )
        recovery[kind] = round(first.answered - ready, 2) if first else None
    load_first_ok = next(
        (
            r.at
            for r in load.records
            if r.at >= ready and isinstance(r.status, int) and r.status < 300
        ),
        None,
    )
    summary = load.summary()
    during = load.summary(since=stopped, until=restarting)
    probe_statuses = Counter(str(p.status) for p in prober.probes)
    hung = [p for p in prober.probes if p.answered - p.sent > 5]
    figures = {
        "scenario": "outage",
        "waited_for_idle_postgres_s": waited,
        "postgres_stop_s": round(stopped - stop_began, 2),
        "postgres_down_s": round(restarting - stopped, 2),
        "postgres_start_s": round(ready - restarting, 2),
        "load_threads": load.threads,
        "load": summary,
        "load_while_down": during,
        "probes": {"requests": len(prober.probes), "by_status": dict(probe_statuses)},
        "probes_while_down_by_kind": down_by_kind,
        "recovery_s_after_postgres_ready": recovery,
        "load_recovery_s": round(load_first_ok - ready, 2) if load_first_ok else None,
        "probes_slower_than_5s": len(hung),
        "writes": writes,
        "same_gunicorn_throughout": same_gunicorn,
        "anomalies": load.anomalies[:10],
        "server_errors": errors,
    }
    all_statuses = set(summary["by_status"]) | set(probe_statuses)
    figures["passed"] = bool(
        down_ok
        and "500" not in all_statuses
        and summary["not_envelope"] == 0
        and all(p.envelope for p in prober.probes)
        and set(during["by_status"]) <= {"503"}
        and all(value is not None and value < 15 for value in recovery.values())
        and writes["lost_writes"] == 0
        and not hung
        and same_gunicorn
    )
    write_result("outage", figures)
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
