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

Limits come from ``catalogue.limits_for(accounts.effective_plan_type(user))``; ``-1`` means
unlimited. A delta that would take a counter past its limit is refused (429
``SUBSCRIPTION_LIMIT_EXCEEDED``) and not recorded. A negative delta only frees, so it is never
refused, even when a downgraded user is above the new plan's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from .. import clock
from ..catalogue import limits_for
from ..errors import ApiError, validation_error
from ..extensions import db
from ..models import User
from ..models.types import UTCDateTime
from . import accounts

UNLIMITED = -1


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


def current_usage(user: User) -> dict[str, Any]:
    """Return the user's usage and limits, with the monthly API-request reset applied.

    The reset is applied on read without writing: the stored counter is zeroed by the next
    recorded delta, but nobody reads a stale counter in the meantime.
    """
    now = clock.now()
    limits = limits_for(accounts.effective_plan_type(user))
    reset_at = user.api_requests_reset_at
    due = _reset_due(reset_at, now)
    return {
        "resumes_created": user.resumes_created,
        "resumes_limit": int(limits["resumesLimit"]),
        "api_requests_used": 0 if due else user.api_requests_used,
        "api_requests_limit": int(limits["apiRequestsLimit"]),
        "storage_used": user.storage_used,
        "storage_limit": int(limits["storageLimit"]),
        "reset_date": reset_at if reset_at is not None and not due else next_reset(now),
    }


def find_user(public_id: str) -> User:
    """Return the user with this public id, or raise USER_NOT_FOUND."""
    user = _load_user(User.public_id == public_id)
    if user is None:
        raise ApiError("USER_NOT_FOUND", "No user has this id.")
    return user


def _load_user(condition) -> User | None:
    """Load a user and their current subscription (its status sets the limits) in one query."""
    return db.session.scalar(
        sa.select(User).options(joinedload(User.current_subscription)).where(condition)
    )


def record_usage(public_id: str, metric: str, delta: int) -> dict[str, Any]:
    """Add `delta` to one usage counter of a user unless it passes the plan's limit.

    The change is ONE conditional UPDATE whose WHERE clause carries the limit, so concurrent
    calls are serialised by the database's row lock and can never overshoot the limit;
    nothing is checked in Python and then written. Returns the usage after the change.
    """
    spec = METRICS[metric]
    if not spec.gauge and delta < 0:
        raise validation_error({"delta": [f"{metric} only counts up; send a positive delta."]})
    user = find_user(public_id)
    user_id = user.id  # kept: a rollback expires `user`, and the row may be gone by then
    limit = int(limits_for(accounts.effective_plan_type(user))[spec.limit_key])
    now = clock.now()

    column = getattr(User, spec.column)
    # Typed BIGINT like the counters: PostgreSQL would type a bare parameter INTEGER and
    # overflow on deltas above 2**31.
    step = sa.literal(delta, sa.BigInteger())
    zero = sa.literal(0, sa.BigInteger())
    values: dict[str, Any] = {}
    if spec.gauge:
        # Freeing more than is used (a retried delete, say) must not drive the gauge negative.
        new_value = sa.case((column + step < zero, zero), else_=column + step)
    else:
        reset_at = User.api_requests_reset_at
        due = sa.and_(reset_at.is_not(None), reset_at <= now)
        new_value = sa.case((due, zero), else_=column) + step
        # Every expression in SET reads the row as it was, so `due` means the same in both.
        values["api_requests_reset_at"] = sa.case(
            (sa.or_(reset_at.is_(None), due), sa.literal(next_reset(now), UTCDateTime())),
            else_=reset_at,
        )
    values[spec.column] = new_value

    statement = sa.update(User).where(User.id == user_id).values(values)
    if limit != UNLIMITED and delta > 0:
        statement = statement.where(new_value <= sa.literal(limit, sa.BigInteger()))
    result = db.session.execute(statement.execution_options(synchronize_session=False))
    if result.rowcount != 1:
        # Refused (or the user was deleted meanwhile): end the transaction, then report the
        # counter as it now stands; `used` comes from the same key of current_usage().
        db.session.rollback()
        user = _load_user(User.id == user_id)
        if user is None:
            raise ApiError("USER_NOT_FOUND", "No user has this id.")
        used = current_usage(user)[spec.column]
        raise ApiError(
            "SUBSCRIPTION_LIMIT_EXCEEDED",
            f"This would pass your plan's {metric} limit of {limit}.",
            {"metric": metric, "limit": limit, "used": used},
        )
    db.session.commit()  # expires `user`: read the stored values back
    return current_usage(_load_user(User.id == user_id))
