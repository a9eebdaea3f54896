"""Personal API keys: what a key may do, until when, and the hash of its secret."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime


class ApiKey(db.Model):
    """A user's key for SmartCV's public API; the secret itself is never stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The id the key list shows (`key_…`): neither the secret nor its hash.
    public_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    # The scopes as bits (services/api_keys.py SCOPES gives each its bit), so the verify call
    # checks one with a bitwise AND inside its UPDATE.
    scope_bits: Mapped[int] = mapped_column()
    # The secret's first 12 characters, shown so a person can tell keys apart.
    prefix: Mapped[str] = mapped_column(sa.String(12))
    # SHA-256 of the secret: the secret has 256 random bits, so a fast hash is enough.
    secret_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Written at most once a minute per key (services/key_check.py), so verifying stays cheap.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<ApiKey {self.public_id} user={self.user_id} revoked={self.revoked_at}>"
