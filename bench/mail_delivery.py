"""Mail delivery figures: messages per second through a local SMTP server, and the time to
the first delivery after the mail server comes back from an outage.

    .venv/bin/python -m bench.mail_delivery [--messages 1000] [--database-url URL]

Needs the test tools (aiosmtpd). It makes its own SQLite file unless given a database URL
(whose mail_outbox table it empties), and starts the real `mail-worker` for the outage half.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import flask_migrate
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from smartcv_account import create_app
from smartcv_account.extensions import db
from smartcv_account.mail import outbox
from smartcv_account.mail.transports import transport_for
from smartcv_account.models import OutboxMessage

ROOT = Path(__file__).resolve().parents[1]


class Counter:
    """An SMTP handler that only counts what it accepts."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        """Accept the message."""
        self.count += 1
        return "250 OK"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def queue(count: int) -> None:
    """Put `count` messages in an empty outbox."""
    db.session.execute(sa.delete(OutboxMessage))
    for n in range(count):
        outbox.enqueue("ann@example.com", "notice_password_changed", name=f"Ann {n}", email="a")
    db.session.commit()


def throughput(app, messages: int) -> float:
    """Messages per second of the worker's pass (`mail-worker --once`) into a local server."""
    handler, port = Counter(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        app.config["MAIL_URL"] = f"smtp://127.0.0.1:{port}"
        with app.app_context():
            queue(messages)
            started = time.perf_counter()
            report = outbox.deliver_due(transport_for(app.config))
            elapsed = time.perf_counter() - started
    finally:
        controller.stop()
    assert report.sent == handler.count == messages, (report, handler.count)
    return messages / elapsed


def recovery(app, database_url: str, outage: float) -> tuple[float, float]:
    """Seconds from the server's return to the first delivery, and the outage's length."""
    handler, port = Counter(), free_port()
    with app.app_context():
        queue(1)
    env = {**os.environ, "DATABASE_URL": database_url, "MAIL_URL": f"smtp://127.0.0.1:{port}"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "mail-worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    try:
        down_at = time.monotonic()
        time.sleep(outage)
        controller.start()
        back_at = time.monotonic()
        while handler.count == 0:
            time.sleep(0.05)
        return time.monotonic() - back_at, back_at - down_at
    finally:
        worker.terminate()
        worker.wait(30)
        controller.stop()


def latency(app, database_url: str, samples: int = 5) -> list[float]:
    """Seconds from a committed message to its arrival, with the worker running."""
    handler, port = Counter(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    env = {**os.environ, "DATABASE_URL": database_url, "MAIL_URL": f"smtp://127.0.0.1:{port}"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "mail-worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    times = []
    try:
        with app.app_context():
            queue(0)
            for _ in range(samples + 1):
                before = handler.count
                outbox.enqueue("ann@example.com", "notice_password_changed", name="A", email="a")
                db.session.commit()
                started = time.monotonic()
                while handler.count == before:
                    time.sleep(0.01)
                times.append(time.monotonic() - started)
                time.sleep(0.37)  # land at different points of the worker's poll
    finally:
        worker.terminate()
        worker.wait(30)
        controller.stop()
    return times[1:]  # the first waits for the worker to start


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--outages", default="5,40", help="outage lengths in seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{scratch}/mail.db"
        app = create_app({"SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            flask_migrate.upgrade()
        print(f"database: {url.split(':')[0]}")
        for _ in range(3):
            print(f"throughput: {throughput(app, args.messages):.0f} messages/s")
        waits = ", ".join(f"{seconds:.2f}" for seconds in latency(app, url))
        print(f"commit to arrival with the worker running: {waits} s")
        for outage in (float(value) for value in args.outages.split(",")):
            delay, down = recovery(app, url, outage)
            print(f"outage {down:.1f} s: first delivery {delay:.1f} s after the server came back")


if __name__ == "__main__":
    main()
