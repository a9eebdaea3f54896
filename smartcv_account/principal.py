"""The signed-in user: one read-only type, loaded with the session check in one statement.

Every authenticated request needs the user and their current subscription, and most requests
only read them. `Principal` holds exactly the columns its fields name (an allow-list: the
password hash, the TOTP secret and the payment client secret are not among them, and a column
added to a model stays in the database until a field here asks for it). Services that change
the account take the principal (or an id) and load the ORM model themselves.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app

from .driver import DriverStatement, pooled
from .extensions import db
from .models import AuthSession, Subscription, User
from .rules.entitlement import team_plan_type_sql

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class PrincipalSubscription:
    """The signed-in user's current subscription, as the reads show it."""

    id: int
    public_id: str
    plan_id: str
    status: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None
    provider_subscription_id: str | None
    payment_method_type: str | None
    card_brand: str | None
    card_last4: str | None
    card_exp_month: int | None
    card_exp_year: int | None
    created_at: datetime
    # A plan change waiting for its payment, and what the next invoice will charge.
    pending_plan_id: str | None
    pending_expires_at: datetime | None
    next_invoice_amount_cents: int | None
    # What is owed, while the latest invoice is open (its client secret is read only then).
    latest_payment_status: str | None
    latest_payment_cents: int | None
    hosted_invoice_url: str | None


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user: the account's readable columns, the session token, the subscription.

    It satisfies Flask-Login's user protocol; `get_id` is never used to rebuild it (the cookie
    is the session token, looked up by `load`).
    """

    id: int
    public_id: str
    email: str
    name: str
    avatar: str | None
    email_verified_at: datetime | None
    language: str
    timezone: str
    theme: str
    email_notifications: bool
    marketing_emails: bool
    resumes_created: int
    api_requests_used: int
    storage_used: int
    api_requests_reset_at: datetime | None
    two_factor_enabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    # The credentials this session was signed in under: a write locks the user's row only
    # while they are still the user's (services/locking.py).
    credential_version: int
    # Not columns of the user: the token this request came with, the subscription of the same
    # row, and the session's own id and last use (the session list's "current" and "last seen").
    session_token: str
    current_subscription: PrincipalSubscription | None
    # The best plan type among the user's teams, None without a team (rules/entitlement.py).
    team_plan_type: str | None
    session_id: int | None = None
    session_last_seen_at: datetime | None = None

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        """Return the session token (Flask-Login's user protocol)."""
        return self.session_token

    @classmethod
    def of(cls, user: User, session_token: str, *, new: bool = False) -> Principal:
        """Build the principal from a loaded model (after a write, before its commit); its
        teams' best plan is read as this transaction sees it (one SELECT; none for a `new`
        account, which belongs to no team)."""
        subscription = user.current_subscription
        team_plan_type = None if new else read_team_plan_type(user.id)
        return cls(
            **{name: getattr(user, name) for name in USER_COLUMNS},
            session_token=session_token,
            team_plan_type=team_plan_type,
            current_subscription=(
                PrincipalSubscription(
                    **{name: getattr(subscription, name) for name in SUBSCRIPTION_COLUMNS}
                )
                if subscription is not None
                else None
            ),
        )


_NOT_USER_COLUMNS = (
    "session_token",
    "current_subscription",
    "team_plan_type",
    "session_id",
    "session_last_seen_at",
)
USER_COLUMNS = tuple(f.name for f in fields(Principal) if f.name not in _NOT_USER_COLUMNS)
SUBSCRIPTION_COLUMNS = tuple(f.name for f in fields(PrincipalSubscription))
_SUB = "sub_"

# The session check: a live session (not revoked, not expired, minted under the user's
# current credentials) joined to its user and their current subscription, with the best plan
# of the user's teams (a subquery on an indexed column; NULL without a team). Built once.
LIVE_SESSION = (
    sa.select(
        *(User.__table__.c[name] for name in USER_COLUMNS),
        *(Subscription.__table__.c[name].label(_SUB + name) for name in SUBSCRIPTION_COLUMNS),
        AuthSession.id.label("session_id"),
        AuthSession.last_seen_at.label("session_last_seen_at"),
        team_plan_type_sql(User.__table__.c.id).label("team_plan_type"),
    )
    .select_from(
        sa.join(AuthSession, User, AuthSession.user_id == User.id).outerjoin(
            Subscription, Subscription.id == User.current_subscription_id
        )
    )
    .where(
        AuthSession.token_hash == sa.bindparam("token_hash"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > sa.bindparam("now", type_=AuthSession.expires_at.type),
        AuthSession.credential_version == User.credential_version,
    )
)


# Built once: every write that answers with the account reads it.
TEAM_PLAN_TYPE = sa.select(team_plan_type_sql(sa.bindparam("user_id", type_=sa.Integer)))


def read_team_plan_type(user_id: int) -> str | None:
    """Read the best plan type of the user's teams as this transaction sees it (one SELECT);
    None without a team."""
    return db.session.scalar(TEAM_PLAN_TYPE, {"user_id": user_id})


def token_hash(token: str) -> str:
    """Return the SHA-256 of a session token, the only form the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load(token: str, now: datetime) -> Principal | None:
    """Return the principal of the live session `token`, or None."""
    row = _session_check(db.engine).run({"token_hash": token_hash(token), "now": now})
    return None if row is None else _from_row(row, token)


class SessionCheck:
    """`LIVE_SESSION` as a `DriverStatement` (driver.py), in autocommit, on its own connection.

    Every authenticated request runs it, so it does less than a query through the ORM
    session would: no transaction (no BEGIN and ROLLBACK round trips on PostgreSQL: one
    SELECT needs none), and no result machinery (on PostgreSQL that halves the CPU time of
    the check). The connection comes from a pool (on a server, a pool of its own without
    pre-ping: a dropped connection fails the SELECT, which then runs once more on a new one).
    """

    def __init__(self, engine: sa.Engine, options: Mapping[str, Any] | None = None) -> None:
        self.engine = self.autocommit = engine
        if engine.dialect.name != "sqlite":
            # On a server, pools of their own without the pre-ping: the ping is one more round
            # trip per request. A connection the server dropped is still replaced: the SELECT
            # fails, the pool is emptied and the SELECT (a read, so safe to repeat) runs again
            # on a new connection (`run`). The check's pool is in autocommit from the start
            # (pysqlite opens no transaction for a SELECT; psycopg would), and also serves the
            # verify call's lone statements (services/key_check.py); the other one serves
            # writes that retry themselves (`unpinged_engine`).
            unpinged = dict(options or {})
            unpinged.pop("pool_pre_ping", None)
            self.engine = sa.create_engine(engine.url, **unpinged)
            self.autocommit = sa.create_engine(engine.url, **unpinged, isolation_level="AUTOCOMMIT")
            sa.event.listen(engine, "engine_disposed", self._dispose_with)
        self.statement = DriverStatement(LIVE_SESSION, engine.dialect)

    def run(self, parameters: dict[str, Any]) -> tuple | None:
        """Run the check; return its row (columns as attributes), or None."""
        try:
            return self._once(parameters)
        except sa.exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
            # The server dropped the connection (a restart, an idle timeout): its pool
            # siblings are as stale, so all are let go; one more try on a new connection.
            self.autocommit.dispose()
            return self._once(parameters)

    def _once(self, parameters: dict[str, Any]) -> tuple | None:
        """Run the SELECT once on a pooled connection (a database that cannot be reached fails
        the checkout with SQLAlchemy's error, which the error handlers answer with 503)."""
        with pooled(self.autocommit) as connection:
            return self.statement.run(connection, parameters)

    def _dispose_with(self, _engine: sa.Engine) -> None:
        """Close this check's own pools when the app's engine is disposed (tests, after fork)."""
        self.autocommit.dispose()
        self.engine.dispose()


def _session_check(engine: sa.Engine) -> SessionCheck:
    """The engine's session check, compiled on first use."""
    check = _CHECKS.get(engine)
    if check is None:
        options = current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS")
        check = _CHECKS[engine] = SessionCheck(engine, options)
    return check


def autocommit_engine() -> sa.Engine:
    """The app's engine for lone statements that commit themselves.

    On a server its pool is in autocommit and has no pre-ping; on SQLite it is the app's
    engine (pysqlite opens a transaction before a write: commit it on the driver, which
    `DriverStatement.run(commit=True)` does).
    """
    return _session_check(db.engine).autocommit


def unpinged_engine() -> sa.Engine:
    """The app's engine for statements that retry a lost connection themselves.

    On a server its pool has no pre-ping (one round trip less); a statement run first on a
    connection from it repeats itself once on a new connection when the old one was dropped
    (nothing was done on a dropped connection: its transaction died with it). On SQLite it is
    the app's engine.
    """
    return _session_check(db.engine).engine


# One per engine (tests build many apps); an engine that is dropped takes its check with it.
_CHECKS: weakref.WeakKeyDictionary[sa.Engine, SessionCheck] = weakref.WeakKeyDictionary()


def _from_row(row: tuple, token: str) -> Principal:
    """Split the session check's row (its columns as attributes) into the principal and their
    subscription."""
    subscription = None
    if getattr(row, _SUB + "id") is not None:
        subscription = PrincipalSubscription(
            **{name: getattr(row, _SUB + name) for name in SUBSCRIPTION_COLUMNS}
        )
    return Principal(
        **{name: getattr(row, name) for name in USER_COLUMNS},
        session_token=token,
        current_subscription=subscription,
        team_plan_type=row.team_plan_type,
        session_id=row.session_id,
        session_last_seen_at=row.session_last_seen_at,
    )
