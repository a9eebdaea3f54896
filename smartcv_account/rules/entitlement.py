"""Entitlement: the status a subscription has at a moment, and which plan's limits apply.

Reads (GET /api/account, GET subscription) judge a loaded row in Python; the usage call judges
it inside its one `UPDATE … RETURNING` in SQL. Both forms are here, built from the same
constants, and `tests/test_rules.py` checks that they agree on every case, the boundaries
included (a cancel at period end whose period ends exactly now, an INCOMPLETE subscription at
its expiry). Trials and teams extend entitlement here and nowhere else.

Reads never call the provider or write: a cancel at period end whose period is over, or an
INCOMPLETE subscription past Stripe's expiry, is ended by the clock before the job that
records it (`flask advance-subscriptions`, a webhook) has run. A renewal not yet run shows as
it was.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..models import LIVE_STATUSES, Plan, Subscription, User

# Statuses that grant the plan's paid limits.
ENTITLED_STATUSES = ("ACTIVE", "TRIALING")
# Stripe expires a subscription whose first payment was not completed after 23 hours.
INCOMPLETE_EXPIRY = timedelta(hours=23)
FREE = "FREE"


def status_at(subscription: Any, now: datetime) -> str:
    """Return the status a read shows at `now`: CANCELED once it has ended by the clock."""
    status = subscription.status
    if status not in LIVE_STATUSES or subscription.provider_subscription_id is None:
        return status
    end = subscription.current_period_end
    if subscription.cancel_at_period_end and end is not None and end <= now:
        return "CANCELED"
    if status == "INCOMPLETE" and subscription.created_at <= now - INCOMPLETE_EXPIRY:
        return "CANCELED"
    return status


def status_at_sql(
    now: sa.ColumnElement[datetime], incomplete_before: sa.ColumnElement[datetime]
) -> sa.ColumnElement[str]:
    """`status_at` in SQL over the `subscriptions` row; `incomplete_before` is
    `now - INCOMPLETE_EXPIRY` (`parameters` makes both)."""
    row = Subscription.__table__.c
    return sa.case(
        (
            sa.or_(
                sa.not_(_one_of(row.status, LIVE_STATUSES)), row.provider_subscription_id.is_(None)
            ),
            row.status,
        ),
        (
            sa.and_(
                row.cancel_at_period_end,
                row.current_period_end.is_not(None),
                row.current_period_end <= now,
            ),
            "CANCELED",
        ),
        (sa.and_(row.status == "INCOMPLETE", row.created_at <= incomplete_before), "CANCELED"),
        else_=row.status,
    )


def _one_of(value: sa.ColumnElement[str], choices: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """`value IN (choices)` written as equalities: an expanding IN list would make SQLAlchemy
    rewrite the statement on every execution of the usage call."""
    return sa.or_(*(value == choice for choice in choices))


def parameters(now: datetime) -> dict[str, datetime]:
    """The values the SQL forms' bind parameters `e_now` and `e_incomplete_before` take."""
    return {"e_now": now, "e_incomplete_before": now - INCOMPLETE_EXPIRY}


def is_entitled(subscription: Any, now: datetime) -> bool:
    """Tell whether the subscription grants its plan's paid limits at `now`."""
    return subscription is not None and status_at(subscription, now) in ENTITLED_STATUSES


def plan_type(subscription: Any, now: datetime, type_of_plan) -> str:
    """Return the plan type whose limits apply: the subscription's while it is entitled, else
    FREE. `type_of_plan(plan_id)` names a plan's type (the reads' in-process plan snapshot)."""
    return type_of_plan(subscription.plan_id) if is_entitled(subscription, now) else FREE


def plan_type_sql(
    now: sa.ColumnElement[datetime], incomplete_before: sa.ColumnElement[datetime]
) -> sa.ColumnElement[str]:
    """`plan_type` in SQL for the `users` row being read or updated: the type of the plan of
    its current subscription while that is entitled, else FREE.

    Nested one-table SELECTs rather than a join: SQLAlchemy writes the columns of a RETURNING
    clause without their table names, and each unqualified name then still means the
    innermost table that has it (a join would make `id` ambiguous).
    """
    subscriptions, plans = Subscription.__table__, Plan.__table__
    entitled_plan_id = (
        sa.select(subscriptions.c.plan_id)
        .where(
            subscriptions.c.id == User.__table__.c.current_subscription_id,
            _one_of(status_at_sql(now, incomplete_before), ENTITLED_STATUSES),
        )
        .correlate_except(subscriptions)  # the users row is the enclosing statement's
        .scalar_subquery()
    )
    entitled_type = sa.select(plans.c.type).where(plans.c.id == entitled_plan_id)
    return sa.func.coalesce(entitled_type.scalar_subquery(), FREE)
