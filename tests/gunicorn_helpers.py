"""Run the service as deployed: gunicorn with gunicorn.conf.py, in a subprocess, on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from .factories import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "multi-instance-test-secret-key-0123456789abcdef"
COOKIE = "smartcv_session"


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a development-mode instance on `database_url`, plus `overrides`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "SMARTCV_ENV": "development",
            "SECRET_KEY": SECRET_KEY,
            "SESSION_COOKIE_SECURE": "0",
            "BCRYPT_ROUNDS": "4",
            "RATELIMIT_ENABLED": "0",
            "BILLING_PROVIDER": "local",
            "INTERNAL_API_TOKEN": "multi-instance-internal-token",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def flask_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `flask --app wsgi ARGS` as an operator would, failing loudly on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def migrated_database(directory: Path) -> str:
    """Return DATABASE_URL's PostgreSQL database, or a SQLite file in `directory`, migrated."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql")):
        url = f"sqlite:///{directory / 'shared.db'}"
    flask_cli(service_env(url), "db", "upgrade")
    return url


@dataclass
class Account:
    """A user signed up over HTTP: public id, email and session cookie."""

    id: str
    email: str
    cookie: str


def sign_up(base_url: str, prefix: str = "user") -> Account:
    """Register a fresh `prefix-…@example.com` user (password PASSWORD) through `base_url`."""
    email = f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"
    response = requests.post(
        base_url + "/api/auth/register",
        json={"email": email, "password": PASSWORD, "name": "Served User"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return Account(response.json()["data"]["id"], email, response.cookies[COOKIE])


@dataclass
class Instance:
    """A running gunicorn: its base URL, process and log file."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """Return what gunicorn and the app wrote so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")


def start(env: dict[str, str], workers: int = 2) -> Instance:
    """Start gunicorn with the project's config on a free loopback port (not waiting for it)."""
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "gunicorn.conf.py",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Instance(f"http://127.0.0.1:{port}", process, Path(log.name))


@contextmanager
def gunicorns(
    env: dict[str, str], count: int = 1, workers: int = 2, timeout: float = 40
) -> Iterator[list[Instance]]:
    """Run `count` gunicorn instances side by side (started together), stopping them on exit."""
    instances = [start(env, workers) for _ in range(count)]
    try:
        for instance in instances:
            wait_until_healthy(instance, timeout)
        yield instances
    finally:
        for instance in instances:  # signal all first, so they shut down in parallel
            if instance.process.poll() is None:
                instance.process.terminate()
        for instance in instances:
            stop(instance.process)
            instance.log_path.unlink(missing_ok=True)


def wait_until_healthy(instance: Instance, timeout: float) -> None:
    """Poll /healthz until it answers 200; fail with gunicorn's log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise AssertionError(
                f"gunicorn exited with {instance.process.returncode}:\n" + instance.log()
            )
        try:
            if requests.get(instance.url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not become healthy in {timeout}s:\n" + instance.log())


def stop(process: subprocess.Popen, grace: float = 15) -> None:
    """Stop gunicorn gracefully (SIGTERM), killing it only if it outlives `grace`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def request(base: str, method: str, path: str, cookie: str, body=None) -> requests.Response:
    """One request on its own connection (either worker may take it), with the cookie."""
    headers = {"Cookie": f"{COOKIE}={cookie}", "Connection": "close"}
    return requests.request(method, base + path, json=body, headers=headers, timeout=30)


def together(*calls) -> list[requests.Response]:
    """Run the calls on threads released together from a barrier; return their answers."""
    barrier = threading.Barrier(len(calls))
    answers: list[requests.Response | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait(10)
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers
