"""A gunicorn worker killed mid-request under an Idempotency-Key: the change happened at most
once, and the repeat tells which."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy.engine import make_url

from .gunicorn_helpers import flask_cli, gunicorns, service_env

pytestmark = pytest.mark.slow

TOKEN = "multi-instance-internal-token"
PASSWORD = "correct horse battery staple"
LEASE_SECONDS = 5


@pytest.fixture
def database(request, tmp_path) -> str:
    """A migrated database: a fresh SQLite file, or DATABASE_URL's PostgreSQL database."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql")):
        request.getfixturevalue("app_factory")()  # its teardown empties the tables
    else:
        url = f"sqlite:///{tmp_path / 'kill.db'}"
    flask_cli(service_env(url), "db", "upgrade")
    return url


def _register(base: str) -> str:
    """Register a user through the API; return its public id."""
    email = f"kill-{uuid.uuid4().hex[:10]}@example.com"
    response = requests.post(
        base + "/api/auth/register",
        json={"email": email, "password": PASSWORD, "name": "Kill Test"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def _usage(base: str, user_id: str, key: str, timeout: float = 10) -> requests.Response:
    """Record one resume for the user under `key`."""
    return requests.post(
        f"{base}/api/internal/users/{user_id}/usage",
        json={"metric": "resumes", "delta": 1},
        headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key},
        timeout=timeout,
    )


def _worker_pid(master: int) -> int:
    """The pid of the only worker of a gunicorn master."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


class RowBlocker:
    """Hold a write lock the request will wait on, from a connection of the test's own."""

    def __init__(self, url: str, user_id: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.connection = sqlite3.connect(make_url(url).database, isolation_level=None)
            self.connection.execute("BEGIN IMMEDIATE")  # the whole database, as SQLite locks
        else:
            conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
            self.connection = psycopg.connect(conninfo)
            self.connection.execute(
                "SELECT 1 FROM users WHERE public_id = %s FOR UPDATE", (user_id,)
            )

    def wait_for_waiter(self) -> None:
        """Return once the request is waiting on the lock (PostgreSQL) or has had time to."""
        if self.url.startswith("sqlite"):
            time.sleep(1)
            return
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
        """Let go of the lock."""
        self.connection.rollback()
        self.connection.close()


def test_a_repeat_after_a_killed_worker_runs_the_change_once(database):
    env = service_env(database, IDEMPOTENCY_LOCK_SECONDS=str(LEASE_SECONDS))
    with gunicorns(env, workers=1) as (instance,):
        user_id = _register(instance.url)
        blocker = RowBlocker(database, user_id)
        lost: list[BaseException] = []

        def doomed() -> None:
            try:
                _usage(instance.url, user_id, "killed")
            except requests.RequestException as error:
                lost.append(error)

        thread = threading.Thread(target=doomed)
        thread.start()
        try:
            blocker.wait_for_waiter()
            os.kill(_worker_pid(instance.process.pid), signal.SIGKILL)
            thread.join(15)
        finally:
            blocker.release()
        assert lost, "the killed request should have had no answer"
        if not database.startswith("sqlite"):
            # Its claim was committed (SQLite's lock held it back earlier): within the lease
            # nobody can tell a dead request from a slow one, so a repeat is told to wait.
            early = _repeat_until_served(instance.url, user_id)
            assert early.status_code == 409, early.text
            assert early.json()["code"] == "IDEMPOTENCY_KEY_IN_USE"

        time.sleep(LEASE_SECONDS + 0.5)  # the dead worker's claim lapses (a real process)
        repeat = _repeat_until_served(instance.url, user_id)
        assert repeat.status_code == 200, repeat.text
        # A fresh answer, not a replay: the killed request had changed nothing.
        assert "Idempotent-Replayed" not in repeat.headers
        assert repeat.json()["data"]["resumesCreated"] == 1

        replay = _usage(instance.url, user_id, "killed")
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json() == repeat.json()


def _repeat_until_served(base: str, user_id: str) -> requests.Response:
    """Repeat the request until the respawned worker answers."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return _usage(base, user_id, "killed")
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
