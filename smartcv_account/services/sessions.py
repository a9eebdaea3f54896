"""Server-side login sessions behind the Flask-Login cookie."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import weakref
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from .. import client, clock
from ..driver import DriverStatement
from ..extensions import db
from ..models import AuthSession, Subscription, User

log = logging.getLogger(__name__)
# How stale a session's last_seen_at may grow before a request writes it again: reads stay
# reads, and the session list's "last seen" lags by at most this much.
TOUCH_INTERVAL = timedelta(minutes=5)


def _hash(token: str) -> str:
    """Return the SHA-256 of a session token, the only form the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(user: User) -> str:
    """Record a new session for `user` and return its token (the caller commits)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    lifetime = timedelta(days=current_app.config["SESSION_LIFETIME_DAYS"])
    caller = client.current()
    db.session.add(
        AuthSession(
            public_id=f"sess_{secrets.token_hex(12)}",
            token_hash=_hash(token),
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
    user.session_token = token
    return token


class _ReadOnly:
    """Attributes set once from a row; assigning one later is a mistake, so it raises."""

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: load the model to change it")


class SignedInSubscription(_ReadOnly):
    """The signed-in user's current subscription, from the session query's row."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)

    @property
    def requires_action(self) -> bool:
        """Tell whether the latest payment waits for the customer (3-D Secure)."""
        return self.next_action is not None


class SignedInUser(_ReadOnly):
    """The signed-in user as every authenticated request first needs them: one Core row.

    Reads (GET account, GET subscription) use it as it is; the ORM's object loading would cost
    more than the query. It is read-only: a service that changes the account loads the model
    with `accounts.as_model`. Attribute names are the model's column names; the row's values
    are copied into plain attributes once, since every request reads a score of them.
    """

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, values: dict, token: str) -> None:
        subscription = {name: values.pop(label) for label, name in _SUBSCRIPTION_LABELS}
        values["session_token"] = token
        values["current_subscription"] = (
            SignedInSubscription(subscription) if subscription["id"] is not None else None
        )
        self.__dict__.update(values)

    def get_id(self) -> str:
        """Return the session token Flask-Login keeps in the signed cookie."""
        return self.session_token


_USERS, _SESSIONS, _SUBSCRIPTIONS = (
    User.__table__,
    AuthSession.__table__,
    Subscription.__table__,
)
# What a request reads of the signed-in user. Secrets (the password hash, the TOTP secret, the
# payment client secret) and bookkeeping only writes need are left in the database: services
# that need them load the model (`accounts.as_model`).
_UNREAD_USER_COLUMNS = frozenset(
    {"password_hash", "totp_secret_encrypted", "totp_last_step", "billing_customer_id"}
)
_UNREAD_SUBSCRIPTION_COLUMNS = frozenset(
    {"user_id", "client_secret", "coupon_code", "canceled_at", "payment_method_id", "updated_at"}
)
_USER_COLUMNS = tuple(c for c in _USERS.c if c.name not in _UNREAD_USER_COLUMNS)
_SUBSCRIPTION_COLUMNS = tuple(
    c for c in _SUBSCRIPTIONS.c if c.name not in _UNREAD_SUBSCRIPTION_COLUMNS
)
# Every authenticated request runs this statement, so it is built once. It checks the session
# and brings the user and their current subscription in one query.
_LIVE_SESSION_USER = (
    sa.select(
        *_USER_COLUMNS,
        _SESSIONS.c.expires_at.label("session_expires_at"),
        _SESSIONS.c.id.label("session_id"),
        _SESSIONS.c.last_seen_at.label("session_last_seen_at"),
        *(column.label("sub_" + column.name) for column in _SUBSCRIPTION_COLUMNS),
    )
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
_SUBSCRIPTION_LABELS = tuple(("sub_" + c.name, c.name) for c in _SUBSCRIPTION_COLUMNS)
# SQLite's counter of commits made by other connections to the database file, from any
# process: while it stands still, nothing any query could see has changed.
SQLITE_DATA_VERSION = sa.text("PRAGMA data_version").columns(sa.column("version", sa.Integer))
# Users remembered between two commits anywhere (a page load's few requests, a burst).
_MAX_REMEMBERED = 4096


class SessionReader:
    """The session check of one app: a connection it keeps, and on SQLite the rows it read.

    The connection is kept, not checked out of the pool for every request: the check is one
    statement, and a checkout with its pre-ping round trip and the check-in cost more than the
    statement. It runs in autocommit, so each statement sees the latest commits. One thread at
    a time uses it; a thread that finds it busy checks a connection out of the pool as any
    query does, so threaded servers never hold more than one extra connection per process.

    On SQLite the rows read are remembered until the database changes: `PRAGMA data_version`
    moves whenever any other connection, in any worker or process, commits (a login, a logout,
    a password change, `revoke-sessions`, an account or subscription update), and every
    remembered row is then dropped. Between two commits the SELECT would return the same row
    (its only other input is the time, checked here against the session's expiry), so a
    request then costs the pragma instead of the joined SELECT. PostgreSQL has no such local
    counter; there every request runs the SELECT.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # A pool that hands every caller the same connection (in-memory SQLite) would let this
        # process's own writes pass unseen: the counter counts other connections' commits.
        self.remembers = engine.dialect.name == "sqlite" and not isinstance(
            engine.pool, sa.pool.StaticPool | sa.pool.SingletonThreadPool
        )
        self._select_user = DriverStatement(_LIVE_SESSION_USER, engine.dialect)
        self._probe = (
            DriverStatement(SQLITE_DATA_VERSION, engine.dialect) if self.remembers else None
        )
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._version: int | None = None
        self._users: dict[str, SignedInUser] = {}
        # The kept connection, if any: a list the finalizer shares, so an app that is dropped
        # (tests make many) closes its connection rather than leave it to the garbage collector.
        self._kept: list[sa.Connection] = []
        weakref.finalize(self, _close_kept, self._kept, hard=True)

    def read(self, token: str, now: datetime) -> SignedInUser | None:
        """Return the user of the live session `token`, or None."""
        if self._pid != os.getpid():
            self._after_fork()
        token_hash = _hash(token)
        if not self._lock.acquire(blocking=False):
            with self.engine.connect() as connection:
                return self._select(_autocommit(connection), token, token_hash, now)
        try:
            for attempt in (1, 2):
                connection = self._connect()
                try:
                    return self._read(connection, token, token_hash, now)
                except sa.exc.DBAPIError as error:
                    # The server dropped the kept connection: once more on a fresh one.
                    if attempt == 2 or not error.connection_invalidated:
                        raise
                    self._forget()
            return None  # not reached
        finally:
            self._lock.release()

    def _read(
        self, connection: sa.Connection, token: str, token_hash: str, now: datetime
    ) -> SignedInUser | None:
        """The remembered user while SQLite's data version stands still, else the SELECT's."""
        if not self.remembers:
            return self._select(connection, token, token_hash, now)
        version = self._probe.first(connection, {})["version"]
        if version != self._version:
            self._version, self._users = version, {}
        user = self._users.get(token_hash)
        if user is None:
            # Read after the version: a commit landing in between moves the version again,
            # and the next request reads afresh.
            user = self._select(connection, token, token_hash, now)
            if user is None:
                return None
            if len(self._users) >= _MAX_REMEMBERED:
                self._users.clear()
            self._users[token_hash] = user
        # The query's one input that moves without a commit.
        return user if user.session_expires_at > now else None

    def _select(
        self, connection: sa.Connection, token: str, token_hash: str, now: datetime
    ) -> SignedInUser | None:
        """Run the session check's SELECT."""
        values = self._select_user.first(connection, {"token_hash": token_hash, "now": now})
        return SignedInUser(values, token) if values is not None else None

    def _connect(self) -> sa.Connection:
        """Return the kept connection, checking a new one out when there is none."""
        connection = self._connection
        if connection is None or connection.closed or connection.invalidated:
            self._forget()
            # Checked out as any connection is, so a dead one is replaced (pre-ping).
            connection = _autocommit(self.engine.connect())
            self._kept.append(connection)
        return connection

    @property
    def _connection(self) -> sa.Connection | None:
        """The kept connection, or None."""
        return self._kept[0] if self._kept else None

    def _forget(self) -> None:
        """Give the kept connection back and drop the remembered rows."""
        self._version, self._users = None, {}
        _close_kept(self._kept)

    def _after_fork(self) -> None:
        """In a forked child: leave the parent's connection to the parent, start afresh."""
        # Its socket is shared with the parent: closing it here would end the parent's session
        # on the server, so it is only kept from being garbage-collected.
        _inherited.extend(self._kept)
        self._kept.clear()
        self._version, self._users = None, {}
        self._lock, self._pid = threading.Lock(), os.getpid()


def _close_kept(kept: list[sa.Connection], hard: bool = False) -> None:
    """Give the connections in `kept` back to the pool, and empty it.

    `hard` closes the database connection itself: when the app is dropped its engine may have
    been disposed, and a connection given back to a disposed pool would stay open, unused.
    """
    while kept:
        connection = kept.pop()
        if hard:
            connection.invalidate()
        connection.close()


def _autocommit(connection: sa.Connection) -> sa.Connection:
    """One SELECT needs no transaction: no BEGIN or ROLLBACK round trips on PostgreSQL."""
    return connection.execution_options(isolation_level="AUTOCOMMIT")


_inherited: list[sa.Connection] = []


def reader() -> SessionReader:
    """Return the current app's session reader, made on first use."""
    found = current_app.extensions.get("smartcv_session_reader")
    if found is None:
        found = current_app.extensions["smartcv_session_reader"] = SessionReader(db.engine)
    return found


def user_for_token(token: str) -> SignedInUser | None:
    """Return the user of a live session token (and its subscription), or None."""
    now = clock.now()
    user = reader().read(token, now)
    if user is not None:
        touch_if_stale(user.session_id, user.session_last_seen_at, now)
    return user


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
                sa.update(_SESSIONS)
                .where(
                    _SESSIONS.c.id == session_id,
                    _SESSIONS.c.last_seen_at <= now - TOUCH_INTERVAL,
                )
                .values(last_seen_at=now)
            )
    except sa.exc.OperationalError:
        log.warning("could not record a session's last use; it will be tried again")


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
