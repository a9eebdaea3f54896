"""Server-side login sessions: the cookie carries a random token, the database its hash."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from .. import client, clock
from ..extensions import db
from ..models import AuthSession, User
from ..principal import Principal, token_hash

log = logging.getLogger(__name__)
# How stale a session's last_seen_at may grow before a request writes it again: reads stay
# reads, and the session list's "last seen" lags by at most this much.
TOUCH_INTERVAL = timedelta(minutes=5)


def start_session(user: User) -> str:
    """Record a new session for `user` and return its token (the caller commits)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    lifetime = timedelta(days=current_app.config["SESSION_LIFETIME_DAYS"])
    caller = client.current()
    db.session.add(
        AuthSession(
            public_id=f"sess_{secrets.token_hex(12)}",
            token_hash=token_hash(token),
            user_id=user.id,
            # The version read with the password hash this login checked: a password change
            # committing meanwhile bumps the user's, so this session never becomes live.
            credential_version=user.credential_version,
            created_at=now,
            expires_at=now + lifetime,
            last_seen_at=now,
            ip_address=caller.ip_address,
            user_agent=caller.user_agent,
        )
    )
    return token


def touch_if_stale(session_id: int, last_seen_at: datetime, now: datetime) -> None:
    """Record that the session was used, when its last_seen_at is older than TOUCH_INTERVAL.

    Its own short transaction, apart from the request's: it is bookkeeping that neither a
    rollback of the request's work nor a failure here should touch. The WHERE repeats the
    staleness test, so workers racing on one session write it once. A failure (SQLite busy
    under a burst of writers) costs only an older "last seen", never the request.
    """
    if now - last_seen_at < TOUCH_INTERVAL:
        return
    try:
        with db.engine.begin() as connection:
            connection.execute(
                sa.update(AuthSession)
                .where(
                    AuthSession.id == session_id,
                    AuthSession.last_seen_at <= now - TOUCH_INTERVAL,
                )
                .values(last_seen_at=now)
            )
    except sa.exc.OperationalError:
        log.warning("could not record a session's last use; it will be tried again")


def revoke_session(token: str) -> int | None:
    """Revoke one session; return its user's id, or None if it was not live (no commit)."""
    return db.session.scalar(
        sa.update(AuthSession)
        .where(AuthSession.token_hash == token_hash(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
        .returning(AuthSession.user_id)
    )


def revoke_user_sessions(user: User | Principal, keep_token: str | None = None) -> int:
    """Revoke every live session of `user` except `keep_token`'s; return how many (no commit)."""
    statement = (
        sa.update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    if keep_token is not None:
        statement = statement.where(AuthSession.token_hash != token_hash(keep_token))
    return db.session.execute(statement).rowcount
