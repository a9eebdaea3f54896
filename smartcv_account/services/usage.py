"""Usage quotas: the counters other SmartCV services record, checked against the plan's limits.

Three metrics are counted on the user's row:

- ``resumes`` (``users.resumes_created``) and ``storage`` (``users.storage_used``) are gauges:
  a positive delta uses, a negative delta frees, and the counter stops at 0.
- ``apiRequests`` (``users.api_requests_used``) only counts up and resets monthly.

Monthly reset (a decision; the product document only shows a ``resetDate``): the API-request
counter resets at the start of each calendar month, UTC. ``users.api_requests_reset_at`` holds
the next reset moment, the first instant of the next month (``2025-02-01T00:00:00Z``); once
``now >= api_requests_reset_at`` the counter starts again from 0. The reset is applied inside
the same conditional UPDATE that records a delta (so it is race-free) and on every read
(``current_usage``), so no reader ever sees last month's counter. A user whose
``api_requests_reset_at`` is still NULL has never had a request recorded: the counter counts
in the current month and the first recorded delta sets the next reset moment.

Limits come from ``catalogue.limits_for(plans.effective_plan_type(user))`` on a read and
from the same rule's SQL form (``rules/entitlement.py``) in the usage UPDATE: the best of the
user's own plan and their teams' plans; ``-1`` means unlimited. A delta that would take a
counter past its limit is refused (429 ``SUBSCRIPTION_LIMIT_EXCEEDED``) and not recorded. A
negative delta only frees, so it is never refused, even when a downgraded user is above the new
plan's limit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from .. import clock, principal
from ..catalogue import PLAN_LIMITS, limits_for, plan_that_lifts
from ..errors import ApiError, validation_error
from ..extensions import db
from ..idempotency import key_held
from ..models import User
from ..models.types import UTCDateTime
from ..principal import Principal
from ..rules import entitlement
from . import plans

UNLIMITED = -1
# The counters are BIGINT: a delta that would take one past this is refused, not wrapped or
# turned into a float (SQLite's integer overflow).
MAX_COUNTER = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Metric:
    """How one metric of the API maps onto the user's row and the plan's limits."""

    column: str
    limit_key: str
    gauge: bool


METRICS: dict[str, Metric] = {
    "resumes": Metric(column="resumes_created", limit_key="resumesLimit", gauge=True),
    "apiRequests": Metric(column="api_requests_used", limit_key="apiRequestsLimit", gauge=False),
    "storage": Metric(column="storage_used", limit_key="storageLimit", gauge=True),
}


def next_reset(moment: datetime) -> datetime:
    """Return the first instant of the calendar month (UTC) after `moment`."""
    moment = moment.astimezone(UTC)
    if moment.month == 12:
        return datetime(moment.year + 1, 1, 1, tzinfo=UTC)
    return datetime(moment.year, moment.month + 1, 1, tzinfo=UTC)


def _reset_due(reset_at: datetime | None, now: datetime) -> bool:
    """Tell whether the API-request counter's month is over."""
    return reset_at is not None and now >= reset_at


def current_usage(user: Principal) -> dict[str, Any]:
    """Return the user's usage and limits, with the monthly API-request reset applied.

    The reset is applied on read without writing: the stored counter is zeroed by the next
    recorded delta, but nobody reads a stale counter in the meantime.
    """
    return usage_of(user, plans.effective_plan_type(user), clock.now())


def usage_of(counters: Any, plan_type: str, now: datetime) -> dict[str, Any]:
    """The usage object of a row of counters (a model, a principal or a returned row)."""
    limits = limits_for(plan_type)
    reset_at = counters.api_requests_reset_at
    due = _reset_due(reset_at, now)
    return {
        "resumes_created": counters.resumes_created,
        "resumes_limit": int(limits["resumesLimit"]),
        "api_requests_used": 0 if due else counters.api_requests_used,
        "api_requests_limit": int(limits["apiRequestsLimit"]),
        "storage_used": counters.storage_used,
        "storage_limit": int(limits["storageLimit"]),
        "reset_date": reset_at if reset_at is not None and not due else next_reset(now),
    }


def _ceiling_in_sql(plan_type: sa.ColumnElement[str], limit_key: str) -> sa.ColumnElement[int]:
    """The most a counter of one metric may hold on the plan, in SQL, from the catalogue: its
    limit, or MAX_COUNTER where the plan is unlimited (-1), so that one comparison decides
    and the plan's expression is written once."""
    ceilings = {name: int(limits[limit_key]) for name, limits in PLAN_LIMITS.items()}
    return sa.case(
        *(
            (
                entitlement.constant(name),
                entitlement.constant(MAX_COUNTER if most == UNLIMITED else most),
            )
            for name, most in ceilings.items()
        ),
        value=plan_type,
    )


def record_usage(public_id: str, metric: str, delta: int) -> dict[str, Any]:
    """Add `delta` to one usage counter of a user unless it passes the plan's limit.

    Two statements: ONE conditional `UPDATE … RETURNING` whose WHERE clause carries the limit
    (so concurrent calls are serialised by the row lock and never overshoot it; nothing is
    checked in Python and then written), and the COMMIT. The answer is built from the returned
    row before the commit, so no failure is reported after the change was recorded.
    """
    spec = METRICS[metric]
    if not spec.gauge and delta < 0:
        raise validation_error({"delta": [f"{metric} only counts up; send a positive delta."]})
    now = clock.now()
    parameters = {"u_public_id": public_id, **counting_parameters(delta, now)}
    row = execute_first(_update(metric, delta > 0), parameters)
    if row is None:
        db.session.rollback()
        raise _refusal(public_id, metric, delta)
    answer = usage_of(row, row.plan_type, now)
    return answer


def counting_parameters(delta: int, now: datetime) -> dict[str, Any]:
    """The values of the bind parameters of `counting_update` for a change of `delta` at `now`."""
    return {
        "u_delta": delta,
        "now": now,
        "u_next_reset": next_reset(now),
        **entitlement.parameters(now),
    }


def execute_first(statement: sa.Update, parameters: dict[str, Any]) -> sa.Row | None:
    """Run the usage UPDATE as the first statement of the request's transaction.

    Without an Idempotency-Key it takes its connection from the pool without pre-ping (one
    round trip less on a server); a connection the server dropped fails it before anything
    was changed, so it runs once more on a new one. Under a key it shares the transaction (and
    the connection) of the key's stored answer.
    """
    if key_held():
        return db.session.connection().execute(statement, parameters).first()
    engine = principal.unpinged_engine()
    bind = {"bind": engine}
    try:
        return db.session.connection(bind_arguments=bind).execute(statement, parameters).first()
    except sa.exc.DBAPIError as error:
        if not error.connection_invalidated:
            raise
        db.session.rollback()
        engine.dispose()
    return db.session.connection(bind_arguments=bind).execute(statement, parameters).first()


@functools.cache
def _update(metric: str, limited: bool) -> sa.Update:
    """The conditional `UPDATE … RETURNING` of one metric of the user named by `u_public_id`."""
    return counting_update(metric, limited).where(User.public_id == sa.bindparam("u_public_id"))


@functools.cache
def counting_update(metric: str, limited: bool) -> sa.Update:
    """The conditional `UPDATE … RETURNING` of one metric, for the caller to say of which user
    (a further `.where`); built once, its values are parameters (`counting_parameters`)."""
    spec = METRICS[metric]
    column = getattr(User, spec.column)
    # Typed BIGINT like the counters: PostgreSQL would type a bare parameter INTEGER and
    # overflow on deltas above 2**31.
    step = sa.bindparam("u_delta", type_=sa.BigInteger())
    zero = sa.literal(0, sa.BigInteger())
    values: dict[str, Any] = {}
    if spec.gauge:
        # Freeing more than is used (a retried delete, say) must not drive the gauge negative.
        new_value = sa.case((column + step < zero, zero), else_=column + step)
    else:
        reset_at = User.api_requests_reset_at
        due = sa.and_(reset_at.is_not(None), reset_at <= sa.bindparam("now", type_=UTCDateTime()))
        new_value = sa.case((due, zero), else_=column) + step
        # Every expression in SET reads the row as it was, so `due` means the same in both.
        values["api_requests_reset_at"] = sa.case(
            (sa.or_(reset_at.is_(None), due), sa.bindparam("u_next_reset", type_=UTCDateTime())),
            else_=reset_at,
        )
    values[spec.column] = new_value
    plan_type = plan_type_in_sql()
    statement = (
        sa.update(User)
        .values(values)
        .returning(
            User.resumes_created,
            User.api_requests_used,
            User.storage_used,
            User.api_requests_reset_at,
            plan_type.label("plan_type"),
        )
    )
    if limited:
        # One comparison, before the addition, so the database never computes a value out of
        # range: the ceiling is at most MAX_COUNTER, so it also keeps the counter in range.
        start = column if spec.gauge else sa.case((due, zero), else_=column)
        statement = statement.where(start <= _ceiling_in_sql(plan_type, spec.limit_key) - step)
    return statement


def plan_type_in_sql() -> sa.ColumnElement[str]:
    """The plan type whose limits apply to the `users` row of the enclosing statement, from
    rules/entitlement.py, its moments bound by `entitlement.parameters`."""
    return entitlement.plan_type_sql(
        sa.bindparam("now", type_=UTCDateTime()),
        sa.bindparam("incomplete_before", type_=UTCDateTime()),
    )


def _refusal(public_id: str, metric: str, delta: int) -> ApiError:
    """Why nothing was recorded: no such user, the counter's range, or the plan's limit (with
    the counter as it stands and the plan that lifts it)."""
    user = db.session.scalar(
        sa.select(User)
        .options(joinedload(User.current_subscription))
        .where(User.public_id == public_id)
    )
    if user is None:
        return ApiError("USER_NOT_FOUND", "No user has this id.")
    user = Principal.of(user, session_token="")  # with the best plan of the user's teams
    spec = METRICS[metric]
    used = current_usage(user)[spec.column]
    if used + delta > MAX_COUNTER:
        return validation_error(
            {"delta": [f"Would take {metric} past its largest value, {MAX_COUNTER}."]}
        )
    return limit_exceeded(metric, plans.effective_plan_type(user), used, delta)


def limit_exceeded(metric: str, plan_type: str, used: int, delta: int) -> ApiError:
    """The SUBSCRIPTION_LIMIT_EXCEEDED answer of a change of `delta` to `used` on `plan_type`."""
    spec = METRICS[metric]
    limit = int(limits_for(plan_type)[spec.limit_key])
    lifts = plan_that_lifts(plan_type, spec.limit_key, used + delta)
    return ApiError(
        "SUBSCRIPTION_LIMIT_EXCEEDED",
        f"This would pass your plan's {metric} limit of {limit} ({used} used)."
        + (f" {lifts} lifts it." if lifts else ""),
        {"metric": metric, "limit": limit, "used": used},
    )
