"""A gunicorn worker killed mid-request under an Idempotency-Key: the change happened at most
once, and a repeat with the same key runs it within 5 seconds of the service serving again,
with the default lease (the claim dies with its owner, not with a clock)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy.engine import make_url

from .gunicorn_helpers import gunicorns, service_env, sign_up

pytestmark = pytest.mark.slow

TOKEN = "multi-instance-internal-token"
KEY = "killed"
# The configured default: a repeat must not have to wait for it to run out.
LEASE_SECONDS = "60"
# The contract: a retry succeeds within this many seconds of the service serving again.
RECOVERY_SECONDS = 5


def record_resume(base: str, user_id: str, timeout: float = 10) -> requests.Response:
    """Record one resume for the user under KEY."""
    return requests.post(
        f"{base}/api/internal/users/{user_id}/usage",
        json={"metric": "resumes", "delta": 1},
        headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": KEY},
        timeout=timeout,
    )


class RowBlocker:
    """PostgreSQL: hold the user's row lock from a connection of the test's own, so that the
    request's change waits on it after its claim was committed."""

    def __init__(self, url: str, user_id: str) -> None:
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        self.connection = psycopg.connect(conninfo)
        self.connection.execute("SELECT 1 FROM users WHERE public_id = %s FOR UPDATE", (user_id,))

    def wait_for_waiter(self) -> None:
        """Return once the request is waiting on the lock."""
        deadline = time.monotonic() + 10
        with psycopg.connect(self.connection.info.dsn, autocommit=True) as probe:
            while time.monotonic() < deadline:
                waiting = probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database() AND query LIKE 'UPDATE users%%'"
                ).fetchone()[0]
                if waiting:
                    return
                time.sleep(0.05)
        raise AssertionError("the request never waited on the row lock")

    def release(self) -> None:
        """Let go of the lock (a connection the server cut has let go of it already)."""
        with contextlib.suppress(psycopg.OperationalError):
            self.connection.rollback()
        self.connection.close()


class SlowTrigger:
    """SQLite: a trigger that keeps the request's change busy for seconds after its claim was
    committed. (SQLite locks the whole database, so a lock held by the test would hold back
    the claim as well, and a killed request would leave nothing to recover from.)"""

    def __init__(self, url: str) -> None:
        self.connection = sqlite3.connect(make_url(url).database, isolation_level=None)
        self.connection.execute("CREATE TABLE slow_rows (n INTEGER)")
        self.connection.executemany("INSERT INTO slow_rows VALUES (?)", [(n,) for n in range(1000)])
        # A billion-row join: about ten seconds of work inside the change's UPDATE.
        self.connection.execute(
            "CREATE TRIGGER slow_usage BEFORE UPDATE ON users BEGIN"
            " SELECT count(*) FROM slow_rows a, slow_rows b, slow_rows c; END"
        )

    def wait_for_waiter(self) -> None:
        """Return once the request's claim is committed (its change is then in the trigger)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = "SELECT count(*) FROM idempotency_keys WHERE key = ?"
            if self.connection.execute(found, (KEY,)).fetchone()[0]:
                time.sleep(0.2)  # from its commit into the UPDATE
                return
            time.sleep(0.02)
        raise AssertionError("the request never claimed its key")

    def release(self) -> None:
        """Drop the trigger."""
        self.connection.execute("DROP TRIGGER slow_usage")
        self.connection.close()


def hold_change(url: str, user_id: str) -> RowBlocker | SlowTrigger:
    """Keep the next change of the user in flight, after its claim, until released."""
    if url.startswith("sqlite"):
        return SlowTrigger(url)
    return RowBlocker(url, user_id)


def send_doomed(base: str, user_id: str) -> tuple[threading.Thread, list]:
    """Send the keyed request in a thread; the list gets its answer or its error."""
    outcome: list = []

    def send() -> None:
        try:
            outcome.append(record_resume(base, user_id, timeout=30))
        except requests.RequestException as error:
            outcome.append(error)

    thread = threading.Thread(target=send)
    thread.start()
    return thread, outcome


def wait_until_serving(base: str) -> float:
    """Poll /healthz until the service answers 200; return that moment (monotonic)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return time.monotonic()
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise AssertionError("the service did not serve again")


def repeat_until_done(base: str, user_id: str, serving_since: float) -> requests.Response:
    """Repeat the request while it is IDEMPOTENCY_KEY_IN_USE, as a careful client would, until
    RECOVERY_SECONDS after `serving_since`; return the last answer."""
    while True:
        answer = record_resume(base, user_id)
        in_use = answer.status_code == 409 and answer.json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
        if not in_use or time.monotonic() - serving_since > RECOVERY_SECONDS:
            return answer
        time.sleep(0.2)


def assert_ran_once(base: str, user_id: str, repeat: requests.Response) -> None:
    """The repeat ran the change afresh (the first attempt had changed nothing), exactly once."""
    assert repeat.status_code == 200, repeat.text
    assert "Idempotent-Replayed" not in repeat.headers
    assert repeat.json()["data"]["resumesCreated"] == 1
    replay = record_resume(base, user_id)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == repeat.json()


def _worker_pid(master: int) -> int:
    """The pid of the only worker of a gunicorn master."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_a_repeat_after_a_killed_worker_runs_the_change_once_at_once(served_database):
    env = service_env(served_database, IDEMPOTENCY_LOCK_SECONDS=LEASE_SECONDS)
    with gunicorns(env, workers=1) as (instance,):
        user_id = sign_up(instance.url, "kill").id
        hold = hold_change(served_database, user_id)
        try:
            thread, outcome = send_doomed(instance.url, user_id)
            hold.wait_for_waiter()
            os.kill(_worker_pid(instance.process.pid), signal.SIGKILL)
            thread.join(15)
        finally:
            hold.release()
        assert outcome and isinstance(outcome[0], requests.RequestException), outcome

        serving_since = wait_until_serving(instance.url)
        repeat = repeat_until_done(instance.url, user_id, serving_since)
        assert_ran_once(instance.url, user_id, repeat)
