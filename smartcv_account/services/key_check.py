"""The verify call: is this API key good for this scope, and is there room in the plan's monthly
API requests? Counted in the same step.

It stands in front of every public API call SmartCV serves, so its common case is ONE statement,
committed by itself: an `UPDATE users … RETURNING` of the usage call's API-request counter
(services/usage.py `counting_update`, the plan's limit in its WHERE from rules/entitlement.py),
whose WHERE also finds the user through the key (by the SHA-256 of the secret, through its
unique index) and requires the key to be live and to carry the scope asked for. Concurrent calls
are serialised by the user's row lock and never overshoot the limit; a refused call matched no
row and changed nothing.

The statements run on the driver's cursor (driver.py), outside the request's ORM transaction,
on a connection in autocommit (PostgreSQL: one round trip, no BEGIN or COMMIT of its own;
SQLite: the UPDATE and its COMMIT, so the write lock is held for the statement alone). That is
the one statement's own transaction, and the answer is made from the row it returned: nothing
that could fail comes after the count but the bookkeeping of the key's last use (below).

Only when that UPDATE matched nothing does a second statement (one SELECT of the key, its user
and the plan) say why: an unknown, malformed or deleted user's key, a revoked or expired key
(401 INVALID_API_KEY), a missing scope (403 INSUFFICIENT_SCOPE) or the plan's limit (429
SUBSCRIPTION_LIMIT_EXCEEDED). A malformed secret (services/key_secrets.py) costs no statement.

`lastUsedAt` is written at most once a minute per key (TOUCH_INTERVAL), by one more UPDATE after
the count, whose WHERE repeats the staleness test so that racing calls write it once. It is
bookkeeping: should that write fail, the call is still answered with its count (which stands),
the failure is logged, and the key's next call writes it.
"""

from __future__ import annotations

import functools
import logging
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import PoolProxiedConnection

from .. import clock, principal
from ..driver import DriverStatement, pooled
from ..errors import ApiError
from ..models import ApiKey, User
from ..models.types import UTCDateTime
from ..rules import entitlement
from . import api_keys, key_secrets, usage

TOUCH_INTERVAL = timedelta(minutes=1)
KEYS = ApiKey.__table__.c

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verified:
    """The verify call's answer: whose key it is, what it may do, and the usage after it."""

    key_id: str
    user_id: str
    scopes: list[str]
    subscription_type: str
    usage: dict[str, Any]


def verify(secret: str, scope: str | None, count: bool) -> Verified:
    """Check the key and the scope; with `count`, record one API request within the limit."""
    if not key_secrets.well_formed(secret):
        raise _invalid("unknown")
    now = clock.now()
    key = {
        "k_hash": key_secrets.secret_hash(secret),
        "k_scope": api_keys.SCOPES[scope] if scope else 0,
        "now": now,
    }
    engine = principal.autocommit_engine()
    statements = _statements(engine)
    try:
        return _verify(engine, statements, key, scope, count, now)
    except sa.exc.DBAPIError as error:
        if error.connection_invalidated:
            # The server dropped the connection (a restart): its pool siblings are as stale,
            # so all are let go and the next call opens a new one. This call is not repeated:
            # its statement commits itself, so a loss after the server's commit and before its
            # reply (as for any COMMIT) would count it twice.
            engine.dispose()
        raise


def _verify(
    engine: sa.Engine,
    statements: _Statements,
    key: dict[str, Any],
    scope: str | None,
    count: bool,
    now: datetime,
) -> Verified:
    """`verify` on one pooled connection."""
    with pooled(engine) as connection:
        if count:
            counting = key | usage.counting_parameters(1, now)
            row = statements.counting.run(connection, counting, commit=True)
            if row is None:
                inspected = _inspect(statements, connection, key["k_hash"], now)
                raise _refusal(inspected, key["k_scope"], scope, now)
        else:
            row = _inspect(statements, connection, key["k_hash"], now)
            refusal = _refusal(row, key["k_scope"], scope, now, limited=False)
            if refusal is not None:
                raise refusal
        if row.last_used_at is None or row.last_used_at <= now - TOUCH_INTERVAL:
            _touch(statements, connection, key["k_hash"], now)
    return Verified(
        key_id=row.key_id,
        user_id=row.user_id,
        scopes=api_keys.scope_names(row.scope_bits),
        subscription_type=row.plan_type,
        usage=usage.usage_of(row, row.plan_type, now),
    )


@dataclass(frozen=True, slots=True)
class _Statements:
    """The verify call's statements, compiled for one engine's dialect."""

    counting: DriverStatement
    inspection: DriverStatement
    touch: DriverStatement


def _statements(engine: sa.Engine) -> _Statements:
    """The engine's statements, compiled on first use."""
    found = _COMPILED.get(engine)
    if found is None:
        dialect = engine.dialect
        found = _COMPILED[engine] = _Statements(
            counting=DriverStatement(_counting(), dialect),
            inspection=DriverStatement(_inspection(), dialect),
            touch=DriverStatement(_touch_update(), dialect),
        )
    return found


# One per engine (tests build many apps); an engine that is dropped takes its statements along.
_COMPILED: weakref.WeakKeyDictionary[sa.Engine, _Statements] = weakref.WeakKeyDictionary()


def _inspect(
    statements: _Statements, connection: PoolProxiedConnection, k_hash: str, now: datetime
) -> tuple | None:
    """Read the key, its user and their plan (the second statement of a refusal)."""
    bound = {"k_hash": k_hash, **entitlement.parameters(now)}
    return statements.inspection.run(connection, bound)


def _touch(
    statements: _Statements, connection: PoolProxiedConnection, k_hash: str, now: datetime
) -> None:
    """Record the key's use (bookkeeping: a failure is logged, and the next call writes it)."""
    stale = {"k_hash": k_hash, "now": now, "k_stale": now - TOUCH_INTERVAL}
    try:
        statements.touch.run(connection, stale, commit=True)
    except sa.exc.DBAPIError:
        log.warning("the last use of an API key was not recorded", exc_info=True)


def _of_key(column: sa.Column) -> sa.ScalarSelect:
    """One column of the key named by `k_hash`, as a scalar subquery (its unique index)."""
    return sa.select(column).where(KEYS.secret_hash == sa.bindparam("k_hash")).scalar_subquery()


@functools.cache
def _counting() -> sa.Update:
    """The usage call's API-request UPDATE, for the user of a live key carrying the scope.

    The key's columns come back as scalar subqueries: SQLite's RETURNING may not name another
    table of an UPDATE … FROM, and each subquery is one look-up in the unique index.
    """
    live_key_user = (
        sa.select(KEYS.user_id)
        .where(
            KEYS.secret_hash == sa.bindparam("k_hash"),
            KEYS.revoked_at.is_(None),
            KEYS.expires_at > sa.bindparam("now", type_=UTCDateTime()),
            KEYS.scope_bits.op("&")(sa.bindparam("k_scope", type_=sa.Integer()))
            == sa.bindparam("k_scope", type_=sa.Integer()),
        )
        .scalar_subquery()
    )
    return (
        usage.counting_update("apiRequests", True)
        .where(User.id == live_key_user, User.deleted_at.is_(None))
        .returning(
            User.public_id.label("user_id"),
            _of_key(KEYS.public_id).label("key_id"),
            _of_key(KEYS.scope_bits).label("scope_bits"),
            _of_key(KEYS.last_used_at).label("last_used_at"),
        )
    )


@functools.cache
def _inspection() -> sa.Select:
    """The key named by `k_hash` with its user's counters and plan type, whatever their state."""
    return (
        sa.select(
            KEYS.public_id.label("key_id"),
            KEYS.scope_bits,
            KEYS.revoked_at,
            KEYS.expires_at,
            KEYS.last_used_at,
            User.public_id.label("user_id"),
            User.deleted_at,
            User.resumes_created,
            User.api_requests_used,
            User.storage_used,
            User.api_requests_reset_at,
            usage.plan_type_in_sql().label("plan_type"),
        )
        .join_from(ApiKey, User, User.id == KEYS.user_id)
        .where(KEYS.secret_hash == sa.bindparam("k_hash"))
    )


@functools.cache
def _touch_update() -> sa.Update:
    """Record the key's use, unless another call did within TOUCH_INTERVAL."""
    stale = sa.bindparam("k_stale", type_=UTCDateTime())
    return (
        sa.update(ApiKey)
        .where(
            KEYS.secret_hash == sa.bindparam("k_hash"),
            sa.or_(KEYS.last_used_at.is_(None), KEYS.last_used_at <= stale),
        )
        .values(last_used_at=sa.bindparam("now", type_=UTCDateTime()))
    )


def _refusal(
    row: tuple | None,
    required: int,
    scope: str | None,
    now: datetime,
    limited: bool = True,
) -> ApiError | None:
    """Why the key's call is refused, first reason first; None if it is not (count=false)."""
    if row is None or row.deleted_at is not None:
        return _invalid("unknown")
    if row.revoked_at is not None:
        return _invalid("revoked")
    if row.expires_at <= now:
        return _invalid("expired")
    if row.scope_bits & required != required:
        granted = api_keys.scope_names(row.scope_bits)
        return ApiError(
            "INSUFFICIENT_SCOPE",
            f"This API key does not have the scope {scope}.",
            {"required": scope, "granted": granted},
        )
    if not limited:
        return None
    used = usage.usage_of(row, row.plan_type, now)["api_requests_used"]
    return usage.limit_exceeded("apiRequests", row.plan_type, used, 1)


INVALID = {
    "unknown": "This API key is not valid.",
    "revoked": "This API key has been revoked.",
    "expired": "This API key has expired.",
}


def _invalid(reason: str) -> ApiError:
    """The 401 of a key that does not work, and why."""
    return ApiError("INVALID_API_KEY", INVALID[reason], {"reason": reason})
