"""Shared pieces of the reliability scenarios: scratch databases, gunicorn, PostgreSQL control.

Everything runs on loopback: gunicorn on 127.0.0.1 free ports (tests/gunicorn_helpers.py),
PostgreSQL on 127.0.0.1:5432, a scratch database per scenario, created and dropped here.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.gunicorn_helpers import (  # noqa: E402 - the project root must be importable first
    Instance,
    flask_cli,
    gunicorns,
    service_env,
)

__all__ = ["Instance", "flask_cli", "gunicorns", "service_env"]

PG_SERVER = os.environ.get("RELIABILITY_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
RESULTS = Path(os.environ.get("RELIABILITY_RESULTS", ROOT / "reliability" / "results"))
INTERNAL_TOKEN = "multi-instance-internal-token"  # service_env's token
PASSWORD = "correct horse battery staple"


def _admin_conninfo() -> str:
    """libpq connection string of the server's maintenance database."""
    return PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + "/postgres"


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """Create a fresh PostgreSQL database, migrated to head; drop it afterwards."""
    name = f"smartcv_rel_{prefix}_{secrets.token_hex(3)}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}"
    try:
        flask_cli(service_env(url), "db", "upgrade")
        flask_cli(service_env(url), "seed-plans")
        yield url
    finally:
        ensure_postgres_running()
        with psycopg.connect(_admin_conninfo(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_name(url: str) -> str:
    """The database part of a URL."""
    return url.rsplit("/", 1)[1]


def query(url: str, sql: str, **params) -> list[tuple]:
    """Run one read-only statement on `url` and return its rows (a fresh connection)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


# --- PostgreSQL control -----------------------------------------------------------------------


def _cluster() -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def postgres_ready() -> bool:
    """Tell whether PostgreSQL accepts connections on loopback."""
    command = ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]
    return subprocess.run(command, check=False).returncode == 0


def stop_postgres() -> None:
    """Stop the PostgreSQL server (fast mode: open sessions are ended at once)."""
    subprocess.run([*_cluster(), "stop", "-m", "fast"], check=True, timeout=30)


def start_postgres() -> float:
    """Start PostgreSQL and wait until it accepts connections; return the monotonic time."""
    subprocess.run([*_cluster(), "start"], check=False, timeout=60)
    for _ in range(300):
        if postgres_ready():
            return time.monotonic()
        time.sleep(0.1)
    raise RuntimeError("PostgreSQL did not come back within 30 s")


def ensure_postgres_running() -> None:
    """Start PostgreSQL if it is down (every exit path of a scenario calls this)."""
    if not postgres_ready():
        print("PostgreSQL is down: starting it", flush=True)
        start_postgres()


def wait_until_postgres_idle(scratch: str, timeout: float = 1200, poll: float = 10) -> int:
    """Wait until no session of another database is open (others share this server).

    Returns the seconds waited; raises TimeoutError after `timeout`.
    """
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL"
        " AND pid <> pg_backend_pid() AND datname <> %s"
    )
    started = time.monotonic()
    while True:
        with psycopg.connect(_admin_conninfo(), autocommit=True) as connection:
            busy = connection.execute(sql, (scratch,)).fetchone()[0]
            names = connection.execute(
                "SELECT datname, count(*) FROM pg_stat_activity WHERE datname IS NOT NULL"
                " AND pid <> pg_backend_pid() AND datname <> %s GROUP BY 1",
                (scratch,),
            ).fetchall()
        waited = time.monotonic() - started
        if busy == 0:
            return round(waited)
        if waited > timeout:
            raise TimeoutError(f"PostgreSQL stayed busy for {timeout:.0f} s: {names}")
        print(
            f"waiting for other PostgreSQL users to finish before stopping it: {busy} session(s)"
            f" {dict(names)} ({waited:.0f} s so far)",
            flush=True,
        )
        time.sleep(poll)


def terminate_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks (restart PostgreSQL) still run."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# --- figures ----------------------------------------------------------------------------------


def distribution(samples: list[float]) -> dict[str, float]:
    """min / p50 / p90 / max / mean of samples (milliseconds, rounded)."""
    ordered = sorted(samples)
    if not ordered:
        return {}

    def pick(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    return {
        "n": len(ordered),
        "min": round(ordered[0], 1),
        "p50": round(statistics.median(ordered), 1),
        "p90": round(pick(0.9), 1),
        "max": round(ordered[-1], 1),
        "mean": round(statistics.fmean(ordered), 1),
    }


def write_result(name: str, figures: dict) -> Path:
    """Write a scenario's figures as JSON under reliability/results/ and print them."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"== {name}: {'PASS' if figures.get('passed') else 'FAIL'} ({path})")
    print(json.dumps(figures, indent=2, sort_keys=True), flush=True)
    return path
