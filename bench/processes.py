"""The benchmark's processes: gunicorn servers, the flask CLI, the PostgreSQL database."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


VENV_BIN = Path(sys.executable).parent


# The gunicorn targets, all started with the same config file, flags and environment.
TARGETS = {
    "service": "wsgi:app",
    "floor": "bench.floor_app:create_app()",
    "stack": "bench.stack_app:create_app()",
    "ceiling": "bench.ceiling_app:app",
}


INTERNAL_TOKEN = "bench-internal-token-" + secrets.token_hex(8)


_started: list[subprocess.Popen] = []


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Stop a gunicorn we started: TERM to the master, then KILL its whole group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    # The group holds only what this master forked (start_new_session), never anyone else's.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    if process in _started:
        _started.remove(process)


def stop_all() -> None:
    """Stop every server this run started (called on exit and on SIGINT/SIGTERM)."""
    for process in list(_started):
        stop(process)


@dataclass
class Server:
    """A gunicorn serving one WSGI target on loopback."""

    name: str
    target: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def address(self) -> tuple[str, int]:
        """Host and port."""
        return ("127.0.0.1", self.port)


def start_server(
    name: str, target: str, env: dict[str, str], workdir: Path, workers: int = 2
) -> Server:
    """Start gunicorn with the project's config file and the benchmark's fixed flags."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    command = [
        str(VENV_BIN / "gunicorn"),
        "--config",
        str(ROOT / "gunicorn.conf.py"),
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        target,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _started.append(process)
    server = Server(name, target, port, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start:\n{log_path.read_text(errors='replace')}")
        with contextlib.suppress(OSError):
            # The service's health check; the floor's runs SELECT 1, the ceiling's catch-all
            # answers it too.
            if call(server, "GET", "/healthz")[0] == 200:
                return server
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer within 60 s:\n{log_path.read_text()}")


def call(
    server: Server, method: str, path: str, headers: dict | None = None, body: dict | None = None
) -> tuple[int, dict, dict]:
    """Make one HTTP request; return status, response headers and the JSON body (or {})."""
    connection = http.client.HTTPConnection(*server.address, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        sent = dict(headers or {})
        if payload is not None:
            sent["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return response.status, dict(response.getheaders()), data
    finally:
        connection.close()


def python_module(env: dict[str, str], module: str, *args: str) -> None:
    """Run `python -m MODULE ARGS` from the checkout, failing the run if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        command = " ".join((module, *args))
        raise RuntimeError(f"{command} failed:\n{result.stdout}\n{result.stderr}")


def flask_cli(env: dict[str, str], *args: str) -> None:
    """Run `flask --app wsgi ARGS` as an operator would."""
    python_module(env, "flask", "--app", "wsgi", *args)


def seed_api_keys(env: dict[str, str], count: int, workdir: Path) -> list[str]:
    """Write `count` users with one API key each (bench/seed_api_keys.py); return the secrets."""
    out = workdir / "api-keys.txt"
    python_module(env, "bench.seed_api_keys", str(count), str(out))
    return out.read_text().split()


def recreate_postgres(url: str) -> None:
    """Drop and create the benchmark's own PostgreSQL database (never any other)."""
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = target.set(database="postgres", drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{target.database}"')


def drop_postgres(url: str) -> None:
    """Drop the benchmark's PostgreSQL database."""
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = target.set(database="postgres", drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')


def postgres_reachable(url: str) -> bool:
    """Tell whether the PostgreSQL server of `url` accepts connections."""
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        admin = make_url(url).set(database="postgres", drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), connect_timeout=3):
            return True
    except Exception as error:  # noqa: BLE001 - any failure means: skip PostgreSQL
        print(f"  PostgreSQL not reachable ({type(error).__name__}: {error}); skipping it.")
        return False
