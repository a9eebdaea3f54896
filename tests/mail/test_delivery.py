"""The mail worker against a real SMTP server: outages, refusals, crashes and races."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.mail import outbox
from smartcv_account.mail.transports import transport_for
from smartcv_account.models import OutboxMessage

ROOT = Path(__file__).resolve().parents[2]


def queue(count: int = 1, to: str = "ann@example.com") -> list[int]:
    """Put `count` messages in the outbox, committed as a service would; return their ids."""
    messages = [
        outbox.enqueue(to, "notice_password_changed", name=f"Ann {n}", email=to)
        for n in range(count)
    ]
    db.session.commit()
    return [message.id for message in messages]


def row(message_id: int) -> OutboxMessage:
    """The message as the database has it now."""
    db.session.expire_all()
    return db.session.get(OutboxMessage, message_id)


def test_message_goes_out_with_a_plain_text_part(deliver, inbox):
    queue()
    report = deliver()
    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    message = inbox.only("ann@example.com")
    assert message.get_content_type() == "text/plain"
    assert message["Message-ID"] and message["Date"]


def test_server_down_at_first_then_up_delivers_after_a_retry(app_factory, smtp_down):
    application = app_factory(MAIL_URL=smtp_down.url)
    start = clock.now()
    clock.freeze(start)
    with application.app_context():
        transport = transport_for(application.config)
        [message_id] = queue()
        report = outbox.deliver_due(transport)
        assert (report.sent, report.retried) == (0, 1)
        waiting = row(message_id)
        assert (waiting.status, waiting.attempts) == ("queued", 1)
        assert "ConnectionRefused" in waiting.last_error
        assert waiting.next_attempt_at == start + outbox.FIRST_RETRY

        smtp_down.start()
        assert outbox.deliver_due(transport).sent == 0  # not due before its delay
        clock.freeze(start + outbox.FIRST_RETRY)
        assert outbox.deliver_due(transport).sent == 1
        assert row(message_id).status == "sent"
    assert len(smtp_down.inbox.to("ann@example.com")) == 1


def test_4xx_answer_is_retried_then_delivered(deliver, inbox, mail_app):
    inbox.replies.append("451 4.3.0 Mailbox temporarily unavailable")
    start = clock.now()
    clock.freeze(start)
    [message_id] = queue()
    assert deliver().retried == 1
    waiting = row(message_id)
    assert (waiting.status, waiting.last_error) == (
        "queued",
        "451 4.3.0 Mailbox temporarily unavailable",
    )
    clock.freeze(start + outbox.FIRST_RETRY)
    assert deliver().sent == 1
    assert len(inbox.to("ann@example.com")) == 1 and row(message_id).attempts == 2


def test_5xx_answer_is_recorded_and_not_retried(deliver, inbox, mail_app):
    inbox.replies.append("550 5.1.1 No such user here")
    [message_id] = queue()
    assert deliver().failed == 1
    failed = row(message_id)
    assert (failed.status, failed.last_error) == ("failed", "550 5.1.1 No such user here")
    clock.freeze(clock.now() + timedelta(days=3))
    assert deliver().handled == 0
    assert inbox.messages == []


def test_retry_delays_grow_and_last_at_least_24_hours(app_factory, smtp_down):
    application = app_factory(MAIL_URL=smtp_down.url)
    start = clock.now()
    moment = start
    with application.app_context():
        transport = transport_for(application.config)
        clock.freeze(moment)
        [message_id] = queue()
        delays = []
        while row(message_id).status == "queued":
            clock.freeze(moment)
            outbox.deliver_due(transport)
            after = row(message_id)
            if after.status == "queued":
                delays.append(after.next_attempt_at - moment)
                moment = after.next_attempt_at
        assert delays[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
        assert max(delays) == outbox.LONGEST_RETRY
        assert moment - start >= timedelta(hours=24)
        assert row(message_id).last_error.startswith("gave up after 3 days")


def test_rolled_back_change_sends_nothing(deliver, inbox, mail_app):
    outbox.enqueue("ann@example.com", "notice_password_changed", name="Ann", email="x")
    db.session.rollback()
    assert deliver().handled == 0
    assert inbox.messages == []


def test_refused_request_sends_nothing(mail_app, deliver, inbox):
    client = mail_app.test_client()
    body = {"email": "ann@example.com", "password": "weak", "name": "Ann"}
    assert client.post("/api/auth/register", json=body).status_code == 422
    assert deliver().handled == 0 and inbox.messages == []


def test_log_transport_prints_the_message_with_its_link(app_factory, capfd):
    application = app_factory(MAIL_URL="log://")
    with application.app_context():
        outbox.enqueue("ann@example.com", "verify_email", name="Ann", email="a", link="L?token=abc")
        db.session.commit()
        outbox.deliver_due(transport_for(application.config))
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if "mail (" in line]
    assert len(lines) == 1
    assert lines[0]["to"] == "ann@example.com"
    assert lines[0]["subject"] == "Confirm your email address for SmartCV"
    assert "\nL?token=abc\n" in lines[0]["text"]


def test_mail_status_prints_counts_and_the_oldest_wait(deliver, inbox, mail_app):
    start = clock.now()
    clock.freeze(start)
    queue(2)
    inbox.replies.append("550 5.7.1 refused")
    deliver()
    queue(1)
    clock.freeze(start + timedelta(seconds=90))
    result = mail_app.test_cli_runner().invoke(args=["mail-status", "--failed"])
    assert result.exit_code == 0, result.output
    assert "queued: 1, sending: 0, sent: 1, failed: 1" in result.output
    assert "oldest queued: 90 s" in result.output
    assert "550 5.7.1 refused" in result.output


def test_mail_worker_once_sends_what_is_due(mail_app, inbox):
    queue(3)
    result = mail_app.test_cli_runner().invoke(args=["mail-worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent 3" in result.output and len(inbox.messages) == 3


def test_bad_mail_url_is_one_error_line(app_factory):
    application = app_factory(MAIL_URL="ftp://example.com")
    with application.app_context():
        result = application.test_cli_runner().invoke(args=["mail-worker", "--once"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: MAIL_URL must start with")


# --- crashes and several workers ----------------------------------------------------------------


def _worker(database_url: str, mail_url: str, *args: str) -> subprocess.Popen:
    """Start `flask --app wsgi mail-worker ARGS` in its own process."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAIL_URL": mail_url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-000000",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "mail-worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class SilentServer:
    """Accepts connections and never greets: a worker talking to it hangs mid-send."""

    def __init__(self) -> None:
        """Listen on a free loopback port."""
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        """Take connections (and keep them open, silent) until the socket closes."""
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)
            self.accepted.set()

    def close(self) -> None:
        """Hang up on everyone and stop listening."""
        for connection in self.connections:
            connection.close()
        self.socket.close()


@pytest.mark.slow
def test_worker_killed_between_claim_and_send_still_delivers(
    database_url, deliver, inbox, mail_app
):
    [message_id] = queue()
    silent = SilentServer()
    try:
        worker = _worker(database_url, f"smtp://127.0.0.1:{silent.port}", "--once")
        assert silent.accepted.wait(30), worker.communicate(timeout=5)
        claimed = row(message_id)
        assert claimed.status == "sending" and claimed.lease_until is not None
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=10)
    finally:
        silent.close()
    assert deliver().handled == 0  # the dead worker's lease still holds
    clock.freeze(claimed.lease_until)
    assert deliver().sent == 1
    assert len(inbox.to("ann@example.com")) == 1


@pytest.mark.slow
def test_two_workers_on_postgresql_send_each_message_once(database_url, mail_app, smtp_server):
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers claim with FOR UPDATE SKIP LOCKED on PostgreSQL only")
    ids = queue(200)
    smtp_server.inbox.delay = 0.04  # long enough for both workers to be claiming at once
    workers = [_worker(database_url, smtp_server.url, "--once", "--batch", "5") for _ in range(2)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    bodies = [m.get_content() for m in smtp_server.inbox.messages]
    assert len(bodies) == len(ids) == len(set(bodies))
    sent = db.session.scalar(sa.select(sa.func.count()).where(OutboxMessage.status == "sent"))
    assert sent == len(ids)
    # Both took part: the claims interleaved rather than one worker doing everything.
    assert all("sent 0" not in out for out, _ in outputs), outputs


def test_a_claim_takes_at_most_one_batch(mail_app):
    queue(12)
    assert len(outbox.claim(5)) == 5
    assert len(outbox.claim(5)) == 5
    assert len(outbox.claim(5)) == 2
    assert outbox.claim(5) == []


def test_server_back_makes_waiting_messages_due_at_once(app_factory, smtp_down):
    application = app_factory(MAIL_URL=smtp_down.url)
    with application.app_context():
        transport = transport_for(application.config)
        [message_id] = queue()
        outbox.deliver_due(transport)
        assert outbox.server_is_back(transport) is False
        assert row(message_id).next_attempt_at > clock.now()
        smtp_down.start()
        assert outbox.server_is_back(transport) is True
        assert outbox.deliver_due(transport).sent == 1
    assert len(smtp_down.inbox.messages) == 1


@pytest.mark.slow
def test_running_worker_delivers_within_seconds_of_the_server_coming_back(
    database_url, mail_app, smtp_down
):
    [message_id] = queue()
    worker = _worker(database_url, smtp_down.url)
    try:
        deadline = time.monotonic() + 30
        while row(message_id).attempts == 0:
            assert time.monotonic() < deadline, "the worker never tried"
            time.sleep(0.1)
        smtp_down.start()
        back = time.monotonic()
        while not smtp_down.inbox.messages:
            assert time.monotonic() - back < 10, "not delivered 10 s after the server came back"
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    assert row(message_id).status == "sent"


def test_old_sent_mail_is_pruned_and_an_address_can_be_forgotten(deliver, mail_app):
    start = clock.now()
    clock.freeze(start)
    [old] = queue()
    deliver()
    clock.freeze(start + timedelta(days=31))
    [recent] = queue(to="bob@example.com")
    [waiting] = queue()
    result = mail_app.test_cli_runner().invoke(args=["mail-worker", "--once"])
    assert result.exit_code == 0, result.output
    assert row(old) is None and row(recent).status == "sent"
    assert outbox.forget("bob@example.com") == 1
    db.session.commit()
    assert row(recent) is None and row(waiting) is not None


def test_log_transport_in_production_hides_the_link_token(app_factory, capfd):
    application = app_factory(
        MAIL_URL="log://", ENV_NAME="production", RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/15"
    )
    with application.app_context():
        outbox.enqueue("ann@example.com", "verify_email", name="Ann", email="a", link="L?token=abc")
        db.session.commit()
        outbox.deliver_due(transport_for(application.config))
    [line] = [json.loads(x) for x in capfd.readouterr().err.splitlines() if "mail (" in x]
    assert "token=abc" not in line["text"] and line["to"] == "ann@example.com"
