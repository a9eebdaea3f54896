"""Server-side login sessions behind the Flask-Login cookie."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .. import clock
from ..extensions import db
from ..models import AuthSession, Subscription, User


def _hash(token: str) -> str:
    """Return the SHA-256 of a session token, the only form the database keeps."""
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


class SignedInSubscription:
    """The signed-in user's current subscription, read-only, from the session query's row."""

    __slots__ = ("_row",)

    def __init__(self, row: sa.Row) -> None:
        self._row = row

    def __getattr__(self, name: str):
        return getattr(self._row, "sub_" + name)

    @property
    def requires_action(self) -> bool:
        """Tell whether the latest payment waits for the customer (3-D Secure)."""
        return self._row.sub_next_action is not None


class SignedInUser:
    """The signed-in user as every authenticated request first needs them: one Core row.

    Reads (GET account, GET subscription) use it as it is; the ORM's object loading would cost
    more than the query. It is read-only: a service that changes the account loads the model
    with `accounts.as_model`. Attribute names are the model's column names.
    """

    __slots__ = ("_row", "session_token", "current_subscription")

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, row: sa.Row, token: str) -> None:
        self._row = row
        self.session_token = token
        self.current_subscription = SignedInSubscription(row) if row.sub_id is not None else None

    def __getattr__(self, name: str):
        return getattr(self._row, name)

    def get_id(self) -> str:
        """Return the session token Flask-Login keeps in the signed cookie."""
        return self.session_token


_USERS, _SESSIONS, _SUBSCRIPTIONS = (
    User.__table__,
    AuthSession.__table__,
    Subscription.__table__,
)
# Every authenticated request runs this statement, so it is built once. It checks the session
# and brings the user and their current subscription in one query.
_LIVE_SESSION_USER = (
    sa.select(_USERS, *(column.label("sub_" + column.name) for column in _SUBSCRIPTIONS.c))
    .select_from(
        _USERS.join(_SESSIONS, _SESSIONS.c.user_id == _USERS.c.id).outerjoin(
            _SUBSCRIPTIONS, _SUBSCRIPTIONS.c.id == _USERS.c.current_subscription_id
        )
    )
    .where(
        _SESSIONS.c.token_hash == sa.bindparam("token_hash"),
        _SESSIONS.c.revoked_at.is_(None),
        _SESSIONS.c.expires_at > sa.bindparam("now", type_=_SESSIONS.c.expires_at.type),
        _SESSIONS.c.credential_version == _USERS.c.credential_version,
    )
)


def user_for_token(token: str) -> SignedInUser | None:
    """Return the user of a live session token (and its subscription) in one query, or None."""
    parameters = {"token_hash": _hash(token), "now": clock.now()}
    # A connection of its own, outside the ORM session: a read needs no unit of work, and the
    # request's session stays untouched (and free) unless the request writes. On PostgreSQL in
    # autocommit: one SELECT needs no transaction, which spares the BEGIN and ROLLBACK round
    # trips (SQLite has no round trips, and switching its mode costs more than it saves).
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT")
        row = connection.execute(_LIVE_SESSION_USER, parameters).first()
    return SignedInUser(row, token) if row is not None else None


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
