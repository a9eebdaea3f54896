"""Outgoing mail, the one-time email links, and the renewal reminders already sent."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime

# An outbox message's states: waiting to be (re)sent, claimed by a worker, done, given up.
MAIL_STATUSES = ("queued", "sending", "sent", "failed")


class OutboxMessage(db.Model):
    """A message written in the transaction of the change that caused it; the worker sends it."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    to_address: Mapped[str] = mapped_column(sa.String(254))
    # The account the message is about, wherever it goes (an email change's confirmation goes
    # to an address the account does not have yet): deleting the account erases it.
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(sa.String(200))
    text_body: Mapped[str] = mapped_column(sa.Text)
    # The token of the body's link (the body holds only its slot), until the message is sent or
    # given up: tokens are otherwise kept only as SHA-256 (mail/outbox.py).
    link_token: Mapped[str | None] = mapped_column(sa.String(64))
    # Kept from the first attempt, so a message that goes twice (a crash mid-send) is one
    # message to the recipient's mail client.
    message_id: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(10), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A worker's claim: until the lease runs out no other worker takes the message; a worker
    # killed mid-send leaves it to expire, and the message is sent again.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(sa.String(32))
    # The mail server's answer to the last failed attempt (or why it never answered).
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index("ix_mail_outbox_due", "status", "next_attempt_at"),)

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.kind} {self.status} attempts={self.attempts}>"


class EmailToken(db.Model):
    """A one-time link's token, stored only as its SHA-256."""

    __tablename__ = "email_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The address the link went to: verification and reset need it to still be the account's;
    # an email change sets it as the new address.
    email: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<EmailToken {self.id} {self.kind} user={self.user_id} used={self.used_at}>"


class RenewalReminder(db.Model):
    """A yearly renewal reminder already written for one subscription's period."""

    __tablename__ = "renewal_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # Several workers may scan at once: the database lets one reminder per period through.
    __table_args__ = (sa.UniqueConstraint("subscription_id", "period_end"),)

    def __repr__(self) -> str:
        return f"<RenewalReminder sub={self.subscription_id} {self.period_end}>"


class PasswordResetRequest(db.Model):
    """A reset link asked for, not yet looked at: the worker finds the account and sends it.

    The request only records the address, the same work for a known and an unknown one, so
    neither the answer nor its timing tells whether the address has an account.
    """

    __tablename__ = "password_reset_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<PasswordResetRequest {self.id}>"


class ConfirmationMailCount(db.Model):
    """How many email-change confirmations went to one address in its current window.

    Keyed by the SHA-256 of the address, so the count keeps no address; a window's row is
    replaced in place when the next one starts and deleted by the worker once it is over
    (mail/quota.py).
    """

    __tablename__ = "confirmation_mail_counts"

    address_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    sent: Mapped[int]

    def __repr__(self) -> str:
        return (
            f"<ConfirmationMailCount {self.address_hash[:8]} {self.sent} since {self.window_start}>"
        )
