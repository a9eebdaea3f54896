"""The account's activity log: what happened to it, when and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime

# The contract's event types ("Sessions and activity").
ACTIVITY_TYPES = (
    "login_succeeded",
    "login_failed",
    # A wrong current password or second-factor code anywhere else (details: action, reason).
    "secret_refused",
    "logout",
    "password_changed",
    "password_reset",
    "two_factor_enabled",
    "two_factor_disabled",
    "backup_code_used",
    "email_verified",
    "email_change_requested",
    "email_changed",
    "session_revoked",
    "subscription_created",
    "subscription_changed",
    "subscription_canceled",
    "payment_failed",
    # A payment was disputed (a chargeback): the subscription was canceled at once.
    "payment_disputed",
    "trial_started",
    # A trial that ended: paid (details.outcome "paid"), unpaid (past due) or canceled.
    "trial_ended",
    "data_exported",
    # Ways in without a password (details: passkeyId or identityId, provider).
    "passkey_added",
    "passkey_removed",
    "identity_linked",
    "identity_unlinked",
    "api_key_created",
    "api_key_revoked",
)


class ActivityEvent(db.Model):
    """One event of a user's account; rows are only ever inserted and pruned, never updated."""

    __tablename__ = "activity_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    __table_args__ = (
        # The list pages newest first by (created_at, id) within one user.
        sa.Index("ix_activity_events_user_created", "user_id", "created_at", "id"),
        # prune-activity deletes by age across users.
        sa.Index("ix_activity_events_created_at", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<ActivityEvent {self.public_id} {self.type} user={self.user_id}>"
