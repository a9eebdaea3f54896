"""Server-side login sessions behind the Flask-Login cookie."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from .. import clock
from ..extensions import db
from ..models import AuthSession, Subscription, User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(user: User) -> str:
    """Record a new session for `user` and return its token (the caller commits)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    lifetime = timedelta(days=current_app.config["SESSION_LIFETIME_DAYS"])
    db.session.add(
        AuthSession(
            token_hash=_hash(token),
            user_id=user.id,
            # The version read with the password hash this login checked: a password change
            # committing meanwhile bumps the user's, so this session never becomes live.
            credential_version=user.credential_version,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    user.session_token = token
    return token


# Every authenticated request runs this statement: it is built once (building it costs more
# than running it), and it brings the user's current subscription in the same query. The plan
# is not joined: reads show it from services/plans.py's in-process snapshot.
_LIVE_SESSION_USER = (
    sa.select(User)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        AuthSession.token_hash == sa.bindparam("token_hash"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > sa.bindparam("now", type_=AuthSession.expires_at.type),
        AuthSession.credential_version == User.credential_version,
    )
    .options(joinedload(User.current_subscription).lazyload(Subscription.plan))
)


def user_for_token(token: str) -> User | None:
    """Return the user of a live session token (and its subscription) in one query, or None."""
    user = db.session.scalar(_LIVE_SESSION_USER, {"token_hash": _hash(token), "now": clock.now()})
    if user is not None:
        user.session_token = token
    return user


def revoke_session(token: str) -> None:
    """Revoke one session (the caller commits)."""
    db.session.execute(
        sa.update(AuthSession)
        .where(AuthSession.token_hash == _hash(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )


def revoke_user_sessions(user: User, keep_token: str | None = None) -> int:
    """Revoke every live session of `user` except `keep_token`'s; return how many (no commit)."""
    statement = (
        sa.update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    if keep_token is not None:
        statement = statement.where(AuthSession.token_hash != _hash(keep_token))
    return db.session.execute(statement).rowcount


def restamp_session(token: str) -> None:
    """Carry `token`'s session over to its user's current credential version (no commit)."""
    db.session.execute(
        sa.update(AuthSession)
        .where(AuthSession.token_hash == _hash(token))
        .values(
            credential_version=sa.select(User.credential_version)
            .where(User.id == AuthSession.user_id)
            .scalar_subquery()
        )
    )
