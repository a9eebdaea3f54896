"""Users, their sessions and their second factor."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime

if TYPE_CHECKING:
    from .billing import Subscription


class User(db.Model):
    """A SmartCV account: identity, preferences, usage counters and security settings."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    # None for an account made by social sign-in: it signs in with its provider or a passkey.
    password_hash: Mapped[str | None] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(100))
    avatar: Mapped[str | None] = mapped_column(sa.String(2048))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    language: Mapped[str] = mapped_column(sa.String(10), default="en")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    theme: Mapped[str] = mapped_column(sa.String(10), default="light")
    email_notifications: Mapped[bool] = mapped_column(default=True)
    marketing_emails: Mapped[bool] = mapped_column(default=False)

    # Usage counters, written only by the internal usage API (services/usage.py).
    resumes_created: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    api_requests_used: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    storage_used: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    api_requests_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    two_factor_enabled: Mapped[bool] = mapped_column(default=False)
    totp_secret_encrypted: Mapped[str | None] = mapped_column(sa.String(255))
    # Highest TOTP time step accepted so far: a code of that step or older is a replay.
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)

    billing_customer_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    # The subscription that decides the account's plan (the latest one that is not canceled).
    current_subscription_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("subscriptions.id", use_alter=True, name="fk_users_current_subscription")
    )

    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every password change; a session is live only while it carries the same
    # number (services/sessions.py), which closes the login-versus-password-change race.
    credential_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Set when the account is deleted: the row stays, erased (services/account_deletion.py),
    # for the invoices that refer to it.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The guessing limit (services/guessing.py): answers to a secret (a password, a second
    # factor) counted since the window started; a right answer gives its count back.
    secret_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    secret_attempts_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    current_subscription: Mapped[Subscription | None] = relationship(
        foreign_keys=[current_subscription_id], post_update=True
    )

    def __repr__(self) -> str:
        return f"<User {self.public_id} {self.email}>"


class AuthSession(db.Model):
    """A server-side login session; the cookie carries only its random token."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The id the session list shows (`sess_…`): neither the token nor its hash.
    public_id: Mapped[str] = mapped_column(sa.String(40))
    # SHA-256 of the cookie's token: a database leak does not hand out live sessions.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Written at most every TOUCH_INTERVAL (services/sessions.py), so reads stay reads.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The client as seen through TRUSTED_PROXIES when the session started.
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    # The user's credential_version when this session's password check ran.
    credential_version: Mapped[int] = mapped_column(default=0, server_default="0")

    user: Mapped[User] = relationship()

    __table_args__ = (sa.Index("ix_auth_sessions_public_id", "public_id", unique=True),)

    def __repr__(self) -> str:
        return f"<AuthSession {self.id} user={self.user_id} revoked={self.revoked_at}>"


class BackupCode(db.Model):
    """A single-use 8-digit recovery code, stored as a keyed hash."""

    __tablename__ = "backup_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("user_id", "code_hash"),)

    def __repr__(self) -> str:
        return f"<BackupCode user={self.user_id} used={self.used_at is not None}>"
