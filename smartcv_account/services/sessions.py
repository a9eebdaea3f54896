"""Server-side login sessions: the cookie carries a random token, the database its hash."""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .. import clock
from ..extensions import db
from ..models import AuthSession, User
from ..principal import Principal, token_hash


def start_session(user: User) -> str:
    """Record a new session for `user` and return its token (the caller commits)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    lifetime = timedelta(days=current_app.config["SESSION_LIFETIME_DAYS"])
    db.session.add(
        AuthSession(
            token_hash=token_hash(token),
            user_id=user.id,
            # The version read with the password hash this login checked: a password change
            # committing meanwhile bumps the user's, so this session never becomes live.
            credential_version=user.credential_version,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


def revoke_session(token: str) -> None:
    """Revoke one session (the caller commits)."""
    db.session.execute(
        sa.update(AuthSession)
        .where(AuthSession.token_hash == token_hash(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
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
