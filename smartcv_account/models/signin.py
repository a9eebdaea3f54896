"""Ways in without a password: passkeys, identities at OpenID Connect providers, and the
single-use WebAuthn challenges handed out for the passkey ceremonies."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime


class Passkey(db.Model):
    """A WebAuthn credential (public key) a user registered to sign in with."""

    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The authenticator's credential id (base64url), which an assertion names.
    credential_id: Mapped[str] = mapped_column(sa.String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    sign_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    name: Mapped[str] = mapped_column(sa.String(100))
    backed_up: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Passkey {self.public_id} user={self.user_id}>"


class LinkedIdentity(db.Model):
    """An account at an OpenID Connect provider (issuer + subject) that signs its user in."""

    __tablename__ = "linked_identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(sa.String(40))
    issuer: Mapped[str] = mapped_column(sa.String(255))
    subject: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("issuer", "subject", name="uq_linked_identity"),)

    def __repr__(self) -> str:
        return f"<LinkedIdentity {self.public_id} {self.provider} user={self.user_id}>"


class WebAuthnChallenge(db.Model):
    """A one-use challenge (services/challenges.py): handed out with passkey options, or named by
    the cookie of a social sign-in waiting for its second factor; deleted when it is used."""

    __tablename__ = "webauthn_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the challenge, found again from the response's clientDataJSON.
    challenge_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # "register" (for `user_id`), "authenticate" (anyone) or "second_factor" (for `user_id`).
    purpose: Mapped[str] = mapped_column(sa.String(16))
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
