"""Where the mail worker hands messages over, chosen by `MAIL_URL`.

`log://` (the default) writes each message as one JSON line on standard error, so development
needs no mail server; `smtp://`, `smtp+starttls://` and `smtps://` talk to a mail server with
the standard library's `smtplib`. A transport sorts every failure into one of two kinds: the
server could not be reached or answered 4xx (try again later), or it refused with 5xx (never).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import sys
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from ..config import ConfigError

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class DeliveryError(Exception):
    """A message did not go; `answer` is the server's reply or why there was none."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


class TemporaryFailure(DeliveryError):
    """A 4xx answer: this message is tried again later."""


class ServerUnreachable(TemporaryFailure):
    """No usable connection (refused, timed out, dropped, TLS or login failed): retry later."""


class PermanentFailure(DeliveryError):
    """A 5xx answer: the server will never take this message, so it is not retried."""


class Connection(AbstractContextManager):
    """An open link to the mail server, sending one message at a time."""

    @abstractmethod
    def send(self, message: EmailMessage) -> None:
        """Hand `message` over, or raise a DeliveryError."""

    def __exit__(self, *exc_info) -> None:
        """Close the link (nothing to close by default)."""


class Transport(ABC):
    """A way to deliver messages."""

    @abstractmethod
    def connect(self) -> Connection:
        """Open a connection, or raise ServerUnreachable."""


class LogConnection(Connection):
    """Writes each message as one JSON line on standard error."""

    def __init__(self, reveal: bool) -> None:
        self.reveal = reveal

    def send(self, message: EmailMessage) -> None:
        """Write `to`, `subject` and the text body as one JSON line."""
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": "INFO",
            "logger": "smartcv_account.mail",
            "message": "mail (log://)",
            "to": message["To"],
            "subject": message["Subject"],
            "text": message.get_content(),
        }
        if not self.reveal:
            # The links sign people in to their account: never in a production log.
            from ..logs import redact

            line["text"] = redact(line["text"])
        # Outside the logging pipeline on purpose: it redacts `token=…`, and the link with its
        # token is what a developer reads this line for.
        print(json.dumps(line, ensure_ascii=False), file=sys.stderr, flush=True)


class LogTransport(Transport):
    """The development transport: no mail server, the message in the service's log."""

    def __init__(self, reveal: bool) -> None:
        self.reveal = reveal

    def connect(self) -> Connection:
        """Return a connection that writes to standard error."""
        return LogConnection(self.reveal)


class SmtpConnection(Connection):
    """One SMTP session, reused for a batch of messages."""

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp

    def send(self, message: EmailMessage) -> None:
        """Send `message`, sorting the server's refusals into temporary and permanent."""
        try:
            refused = self.smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise _by_code(code, reply) from None
        except smtplib.SMTPNotSupportedError as error:
            # An address that needs SMTPUTF8 and a server without it: this message never goes.
            raise PermanentFailure(_describe(error)) from None
        except smtplib.SMTPResponseException as error:
            raise _by_code(error.smtp_code, error.smtp_error) from None
        except (smtplib.SMTPException, OSError) as error:
            raise ServerUnreachable(_describe(error)) from None
        if refused:  # only with several recipients; ours have one
            code, reply = next(iter(refused.values()))
            raise _by_code(code, reply)

    def __exit__(self, *exc_info) -> None:
        """Say QUIT; a server that already hung up needs nothing more."""
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()


class SmtpTransport(Transport):
    """SMTP, in plain text, upgraded with STARTTLS, or over TLS from the start (smtps)."""

    def __init__(self, mode: str, host: str, port: int, user: str, password: str, timeout: int):
        self.mode, self.host, self.port = mode, host, port
        self.user, self.password, self.timeout = user, password, timeout

    def connect(self) -> Connection:
        """Connect, say EHLO, upgrade to TLS and log in as configured."""
        # Made per connection, so a renewed certificate store is read; plain SMTP needs none.
        context = ssl.create_default_context() if self.mode != "smtp" else None
        try:
            if self.mode == "smtps":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                if self.mode == "smtp+starttls":
                    smtp.starttls(context=context)
                if self.user:
                    smtp.login(self.user, self.password)
            except BaseException:
                smtp.close()
                raise
        except smtplib.SMTPResponseException as error:
            raise ServerUnreachable(_reply(error)) from None
        except (smtplib.SMTPException, OSError) as error:
            raise ServerUnreachable(_describe(error)) from None
        return SmtpConnection(smtp)


def _reply(error: smtplib.SMTPResponseException) -> str:
    """Render a server reply as `451 text`."""
    text = error.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{error.smtp_code} {text}"


def _by_code(code: int, reply: bytes | str) -> DeliveryError:
    """Make the failure for an SMTP reply code: 5xx permanent, anything else temporary."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    answer = f"{code} {text}"
    return PermanentFailure(answer) if 500 <= code < 600 else TemporaryFailure(answer)


def _describe(error: BaseException) -> str:
    """Say why no server answered (refused, timed out, TLS failed, dropped)."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def transport_for(config: dict) -> Transport:
    """Return the transport `MAIL_URL` names, or raise ConfigError for one that cannot work."""
    url = config["MAIL_URL"]
    parts = urlsplit(url)
    if parts.scheme == "log":
        return LogTransport(reveal=config.get("ENV_NAME") != "production")
    if parts.scheme not in DEFAULT_PORTS:
        raise ConfigError("MAIL_URL must start with log://, smtp://, smtp+starttls:// or smtps://")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ConfigError("MAIL_URL has an invalid port") from None
    if not parts.hostname:
        raise ConfigError("MAIL_URL names no mail server host")
    return SmtpTransport(
        parts.scheme,
        parts.hostname,
        port,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        config["MAIL_TIMEOUT"],
    )
