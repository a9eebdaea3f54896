"""A real SMTP server (aiosmtpd) on loopback, an app that mails to it, and the worker's pass."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from smartcv_account.mail import outbox
from smartcv_account.mail.transports import transport_for
from smartcv_account.worker import work_once

from ..gunicorn_helpers import free_port

LINK = re.compile(r"^(?P<link>https?://\S+/(?P<path>[\w-]+)\?token=(?P<token>[\w-]+))\r?$", re.M)


class Inbox:
    """The aiosmtpd handler: keeps what it accepts; answers with queued replies when told."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.replies: list[str] = []
        self.delay = 0.0  # seconds before each answer: a slower server, for races
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        """Accept the message, or give the next queued reply (a 4xx or 5xx) instead."""
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages delivered to `address`."""
        return [m for m in self.messages if m["To"] == address]

    def only(self, address: str) -> EmailMessage:
        """The one message delivered to `address`."""
        found = self.to(address)
        assert len(found) == 1, [m["Subject"] for m in found]
        return found[0]


class SmtpServer:
    """An aiosmtpd server on a fixed loopback port that a test can stop and start again."""

    def __init__(self, port: int, **controller_options) -> None:
        self.port = port
        self.inbox = Inbox()
        self.options = controller_options
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        """The MAIL_URL that reaches this server."""
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start listening."""
        self.controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, **self.options
        )
        self.controller.start()

    def stop(self) -> None:
        """Stop listening (connections are refused afterwards)."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server on loopback."""
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_down() -> Iterator[SmtpServer]:
    """An SMTP server that is not started yet (its port refuses connections)."""
    server = SmtpServer(free_port())
    yield server
    server.stop()


@pytest.fixture
def mail_app(app_factory, smtp_server):
    """The app, mailing to the running SMTP server, with an application context pushed."""
    from smartcv_account.extensions import db

    application = app_factory(MAIL_URL=smtp_server.url, APP_BASE_URL="https://app.example.com")
    with application.app_context():
        yield application
        db.session.remove()


@pytest.fixture
def client(mail_app):
    """A browser of the mailing app."""
    return mail_app.test_client()


@pytest.fixture
def inbox(smtp_server) -> Inbox:
    """What the running SMTP server received."""
    return smtp_server.inbox


@pytest.fixture
def deliver(mail_app):
    """Run one `mail-worker --once` pass in this process; return its report."""

    def run() -> outbox.DeliveryReport:
        """Compose the reset links asked for and send everything due now."""
        return work_once(transport_for(mail_app.config))

    return run


def link_in(message: EmailMessage) -> dict[str, str]:
    """The one link of a message: `link`, `path` and `token`; each stands on its own line."""
    found = [m.groupdict() for m in LINK.finditer(message.get_content())]
    assert len(found) == 1, message.get_content()
    return found[0]


def verification_token(deliver, inbox, email="ann@example.com") -> str:
    """Send the outbox and return the token of the one verification link `email` got."""
    deliver()
    found = link_in(inbox.only(email))
    assert found["path"] == "verify-email"
    return found["token"]
