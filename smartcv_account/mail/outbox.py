"""The outbox: messages written with the change that causes them, sent later by the worker.

A service calls `enqueue` inside its own transaction, so a change that rolls back leaves no
message and no request waits on the mail server. The worker (`flask --app wsgi mail-worker`)
claims due messages, hands them to the transport and records what happened:

- a claim is a lease (`lease_until`) taken in one UPDATE; on PostgreSQL its candidate rows are
  picked `FOR UPDATE SKIP LOCKED`, so several workers each take different messages, and on
  SQLite the single UPDATE runs under the database's one writer lock;
- a worker killed after claiming leaves the lease to run out, and the next worker sends the
  message again (twice at worst, never lost);
- a server that cannot be reached, or answers 4xx, gets the message again after a growing delay
  until `MAIL_RETRY_HOURS` (72) have passed; a 5xx refusal is recorded and not retried;
- a link's token is never part of the stored body: the body holds TOKEN_SLOT where it goes, the
  token waits in `link_token` until the message is sent or given up, and is then cleared, so
  no sent message keeps a copy of a working link.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

import sqlalchemy as sa
from flask import current_app, render_template

from .. import clock
from ..extensions import db
from ..models import OutboxMessage
from .transports import DeliveryError, PermanentFailure, ServerUnreachable, Transport

# Long enough for a whole batch to time out message by message (MAIL_TIMEOUT each).
LEASE = timedelta(minutes=5)
BATCH_SIZE = 20
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(minutes=30)
# Where a link's token stands in a stored body; put back only in the message handed to the
# mail server (`as_email`).
TOKEN_SLOT = "{token}"


def enqueue(
    to_address: str,
    template: str,
    *,
    user_id: int | None = None,
    link_token: str | None = None,
    **context,
) -> OutboxMessage:
    """Render `mail/<template>.txt` and add it to the outbox (the caller's transaction commits).

    The template's first line is the subject; the rest, after a blank line, the text body.
    `user_id` names the account the message is about, so that deleting it erases the message.
    `link_token` is the token of the body's `link(...)`, kept apart until the message is sent.
    """
    rendered = render_template(f"mail/{template}.txt", **context)
    subject, _, body = rendered.strip().partition("\n")
    if link_token is not None and TOKEN_SLOT not in body:
        raise ValueError(f"mail/{template}.txt shows no link(...) for its link_token")
    now = clock.now()
    sender_domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2]
    message = OutboxMessage(
        kind=template,
        to_address=to_address,
        user_id=user_id,
        link_token=link_token,
        subject=subject.strip()[:200],
        text_body=body.strip() + "\n",
        message_id=make_msgid(domain=sender_domain or "localhost"),
        status="queued",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db.session.add(message)
    return message


def link(path: str) -> str:
    """Return the front end's link `APP_BASE_URL/path?token=…`, its token a slot that the
    message's `link_token` fills when it is sent."""
    return f"{current_app.config['APP_BASE_URL']}/{path}?token={TOKEN_SLOT}"


def _due(now: datetime):
    """The condition of a message a worker may take now."""
    return sa.or_(
        sa.and_(OutboxMessage.status == "queued", OutboxMessage.next_attempt_at <= now),
        sa.and_(OutboxMessage.status == "sending", OutboxMessage.lease_until <= now),
    )


def claim(limit: int = BATCH_SIZE) -> list[OutboxMessage]:
    """Take up to `limit` due messages for this worker under a lease, and commit the claim."""
    now = clock.now()
    token = secrets.token_hex(16)
    candidates = (
        sa.select(OutboxMessage.id)
        .where(_due(now))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if db.engine.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    # A CTE, not `id IN (subquery)`: PostgreSQL may run an IN subquery once per row it scans,
    # and its LIMIT then stops nothing; a CTE with FOR UPDATE runs exactly once.
    picked = candidates.cte("picked")
    db.session.execute(
        sa.update(OutboxMessage)
        # The due condition again: on SQLite the CTE and the UPDATE are one statement under
        # the writer lock; on PostgreSQL it re-checks a row another worker just took.
        .where(OutboxMessage.id == picked.c.id, _due(now))
        .values(status="sending", lease_until=now + LEASE, claim_token=token)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.claim_token == token, OutboxMessage.status == "sending")
            .order_by(OutboxMessage.id)
        )
    )


def as_email(message: OutboxMessage) -> EmailMessage:
    """Build the MIME message: a plain-text part, the stored Message-ID, today's date."""
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Date"] = format_datetime(clock.now())
    email["Message-ID"] = message.message_id
    email["Auto-Submitted"] = "auto-generated"
    body = message.text_body
    if message.link_token is not None:
        body = body.replace(TOKEN_SLOT, message.link_token)
    email.set_content(body)
    return email


@dataclass
class DeliveryReport:
    """What one pass of the worker did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    answers: list[str] = field(default_factory=list)
    unreachable: bool = False  # the server could not be reached during this pass

    @property
    def handled(self) -> int:
        """How many messages this pass dealt with."""
        return self.sent + self.retried + self.failed


def deliver_batch(transport: Transport, limit: int = BATCH_SIZE) -> DeliveryReport:
    """Claim one batch and send it over one connection; record each message's outcome."""
    report = DeliveryReport()
    batch = claim(limit)
    if not batch:
        return report
    try:
        connection = transport.connect()
    except ServerUnreachable as error:
        report.unreachable = True
        for message in batch:
            _retry_later(message, error.answer, report)
        db.session.commit()
        return report
    with connection:
        for index, message in enumerate(batch):
            try:
                connection.send(as_email(message))
            except ServerUnreachable as error:
                report.unreachable = True
                _retry_later(message, error.answer, report)
                # The link is gone: the rest were not tried, so they go back without a count.
                for untried in batch[index + 1 :]:
                    _release(untried)
                db.session.commit()
                break
            except DeliveryError as error:
                if isinstance(error, PermanentFailure):
                    _fail(message, error.answer, report)
                else:
                    _retry_later(message, error.answer, report)
            else:
                _sent(message, report)
            db.session.commit()
    return report


def deliver_due(transport: Transport, limit: int = BATCH_SIZE) -> DeliveryReport:
    """Send batches until nothing is due (or only failures remain to wait); the `--once` pass."""
    total = DeliveryReport()
    while True:
        report = deliver_batch(transport, limit)
        total.sent += report.sent
        total.retried += report.retried
        total.failed += report.failed
        total.answers += report.answers
        total.unreachable = total.unreachable or report.unreachable
        # Every claimed message ends sent, failed, delayed or (untried) due again after one of
        # them was delayed, so this ends once nothing is due. An empty claim can also mean that
        # another worker was claiming the same rows at that moment: look again before leaving.
        if report.handled == 0 and not _anything_due():
            return total


def server_is_back(transport: Transport) -> bool:
    """Try the mail server; when it answers, make every waiting message due now.

    The worker calls this every few seconds while the server is unreachable, so an outage
    ends with delivery within seconds rather than at each message's next backed-off attempt.
    """
    try:
        with transport.connect():
            pass
    except ServerUnreachable:
        return False
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.status == "queued", OutboxMessage.next_attempt_at > clock.now())
        .values(next_attempt_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return True


def _anything_due() -> bool:
    """Tell whether any message is due now (claimed by nobody, or its lease ran out)."""
    found = db.session.scalar(sa.select(sa.exists().where(_due(clock.now()))))
    db.session.commit()
    return bool(found)


def _sent(message: OutboxMessage, report: DeliveryReport) -> None:
    """Record a message the server accepted."""
    message.status = "sent"
    message.attempts += 1
    message.sent_at = clock.now()
    message.lease_until = None
    message.link_token = None
    report.sent += 1


def _fail(message: OutboxMessage, answer: str, report: DeliveryReport) -> None:
    """Record a message the server refused for good."""
    message.status = "failed"
    message.attempts += 1
    message.last_error = answer[:2000]
    message.lease_until = None
    message.link_token = None
    report.failed += 1
    report.answers.append(answer)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 30 s, doubling, at most 30 minutes."""
    # The exponent stops growing long before it could overflow a timedelta.
    return min(FIRST_RETRY * 2 ** min(attempts - 1, 16), LONGEST_RETRY)


def _retry_later(message: OutboxMessage, answer: str, report: DeliveryReport) -> None:
    """Put the message back for a later attempt, or give it up once the retry window is over."""
    now = clock.now()
    message.attempts += 1
    message.last_error = answer[:2000]
    message.lease_until = None
    window = timedelta(hours=current_app.config["MAIL_RETRY_HOURS"])
    if now - message.created_at >= window:
        message.status = "failed"
        message.last_error = f"gave up after {window}: {answer}"[:2000]
        message.link_token = None
        report.failed += 1
    else:
        message.status = "queued"
        message.next_attempt_at = now + retry_delay(message.attempts)
        report.retried += 1
    report.answers.append(answer)


def _release(message: OutboxMessage) -> None:
    """Hand an untried message back, due now."""
    message.status = "queued"
    message.lease_until = None


def prune(keep: timedelta) -> int:
    """Delete sent and failed messages older than `keep` (they hold addresses and names)."""
    result = db.session.execute(
        sa.delete(OutboxMessage).where(
            OutboxMessage.status.in_(("sent", "failed")),
            OutboxMessage.created_at < clock.now() - keep,
        )
    )
    return result.rowcount


def forget(address: str, user_id: int | None = None) -> int:
    """Delete every message to `address` or about account `user_id`, sent or not (an erased
    account; no commit)."""
    about = OutboxMessage.to_address == address
    if user_id is not None:
        about = sa.or_(about, OutboxMessage.user_id == user_id)
    result = db.session.execute(sa.delete(OutboxMessage).where(about))
    return result.rowcount


@dataclass(frozen=True)
class OutboxStatus:
    """What `mail-status` prints."""

    counts: dict[str, int]
    oldest_queued: datetime | None


def status() -> OutboxStatus:
    """Count the messages in each state and find the oldest one still waiting to go."""
    rows = db.session.execute(
        sa.select(OutboxMessage.status, sa.func.count()).group_by(OutboxMessage.status)
    ).all()
    oldest = db.session.scalar(
        sa.select(sa.func.min(OutboxMessage.created_at)).where(
            OutboxMessage.status.in_(("queued", "sending"))
        )
    )
    counts = dict.fromkeys(("queued", "sending", "sent", "failed"), 0)
    counts.update({name: count for name, count in rows})
    return OutboxStatus(counts, oldest)


def recent_failures(limit: int = 20) -> list[OutboxMessage]:
    """The latest messages given up on, with the server's answers."""
    return list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.status == "failed")
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        )
    )
