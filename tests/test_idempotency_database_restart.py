"""PostgreSQL restarted under a keyed request: a repeat with the same key runs the change
within 5 seconds of the service serving again, with the default lease.

The server is shared with other people's tests, so it is not restarted. The test does to this
test database what a restart does to it: every connection is cut (`pg_terminate_backend`) and
new ones are refused for a moment (`ALLOW_CONNECTIONS false`), so the cut request cannot give
its key up itself; then connections are let in again. (Cutting them alone would leave the
request a working database to release its key on, which a restart does not.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import requests
from psycopg import sql
from sqlalchemy.engine import make_url

from .gunicorn_helpers import gunicorns, service_env, sign_up
from .test_idempotency_worker_kill import (
    LEASE_SECONDS,
    RowBlocker,
    assert_ran_once,
    repeat_until_done,
    send_doomed,
    wait_until_serving,
)

POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not POSTGRES,
        reason="cuts a PostgreSQL database's connections: set DATABASE_URL to a PostgreSQL URL",
    ),
]

DOWN_SECONDS = 1


@contextmanager
def database_down(url: str) -> Iterator[None]:
    """Cut every connection to the database and refuse new ones until the block ends.

    Run from the server's `postgres` database: PostgreSQL refuses to close the database a
    command runs in.
    """
    target = make_url(url)
    maintenance = target.set(drivername="postgresql", database="postgres")
    name = sql.Identifier(target.database)
    with psycopg.connect(maintenance.render_as_string(False), autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(name))
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (target.database,),
            )
            yield
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(name))


@pytest.fixture
def database(app_factory) -> str:
    """DATABASE_URL's PostgreSQL database, migrated (the app's teardown empties its tables)."""
    app_factory()
    return os.environ["DATABASE_URL"]


def test_a_repeat_after_a_database_restart_runs_the_change_once_at_once(database):
    env = service_env(database, IDEMPOTENCY_LOCK_SECONDS=LEASE_SECONDS)
    with gunicorns(env, workers=1) as (instance,):
        user_id = sign_up(instance.url, "restart").id
        blocker = RowBlocker(database, user_id)
        try:
            thread, outcome = send_doomed(instance.url, user_id)
            blocker.wait_for_waiter()
            with database_down(database):
                thread.join(15)
                time.sleep(DOWN_SECONDS)
                assert requests.get(instance.url + "/healthz", timeout=10).status_code == 503
        finally:
            blocker.release()
        assert outcome and outcome[0].status_code == 503, outcome

        serving_since = wait_until_serving(instance.url)
        repeat = repeat_until_done(instance.url, user_id, serving_since)
        assert_ran_once(instance.url, user_id, repeat)
