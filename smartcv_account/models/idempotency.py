"""Idempotency keys: the first answer to a request sent under an `Idempotency-Key`."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime


class IdempotencyKey(db.Model):
    """One caller's key: who is running it now, or the answer it got, until it expires."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    # `user:<public id>` for a session, `internal:<token digest>` for the internal API.
    caller: Mapped[str] = mapped_column(sa.String(100))
    key: Mapped[str] = mapped_column(sa.String(255))
    # SHA-256 of the method, the path and the canonical JSON body.
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    # The running request as `<pid>:<random token>`; None once the answer is stored.
    owner: Mapped[str | None] = mapped_column(sa.String(64))
    # On SQLite, an owner in a live process whose lease has passed is presumed dead (its
    # transaction rolled back); PostgreSQL tells by an advisory lock instead (idempotency.py).
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (sa.UniqueConstraint("caller", "key", name="uq_idempotency_keys_caller_key"),)

    def __repr__(self) -> str:
        return f"<IdempotencyKey {self.caller} {self.key!r} {self.response_status}>"
