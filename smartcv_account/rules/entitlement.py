"""Entitlement: the status a subscription has at a moment, and which plan's limits apply.

Reads (GET /api/account, GET subscription) judge a loaded row in Python; the usage call judges
it inside its one `UPDATE … RETURNING` in SQL. Both forms are here, built from the same
constants, and `tests/test_rules.py` checks that they agree on every case, the boundaries
included (a cancel at period end whose period ends exactly now, an INCOMPLETE subscription at
its expiry). Trials and teams extend entitlement here and nowhere else.

Teams: the plan whose limits apply is the best of the user's own (their subscription's while
it is entitled, else FREE) and the plans of the teams they belong to (an operator puts a team
on ENTERPRISE). Membership lives in the database and both forms read it as it stands, so a
member who leaves, is removed or whose team goes back to FREE has the smaller limits on every
instance with the next request; nothing caches it.

Reads never call the provider or write: a cancel at period end whose period is over, or an
INCOMPLETE subscription past Stripe's expiry, is ended by the clock before the job that
records it (`flask advance-subscriptions`, a webhook) has run. A renewal not yet run shows as
it was.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from ..catalogue import PLAN_TYPE_ORDER
from ..models import LIVE_STATUSES, Plan, Subscription, Team, TeamMember, User

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
            constant("CANCELED"),
        ),
        (
            sa.and_(row.status == constant("INCOMPLETE"), row.created_at <= incomplete_before),
            constant("CANCELED"),
        ),
        else_=row.status,
    )


def _one_of(value: sa.ColumnElement[str], choices: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """`value IN (choices)` with the choices written into the SQL: `value` (a CASE, for the
    entitled statuses) is written once, and no expanding parameter list makes SQLAlchemy
    rewrite the statement on each execution."""
    return value.in_([constant(choice) for choice in choices])


def parameters(now: datetime) -> dict[str, datetime]:
    """The values the SQL forms' bind parameters `now` and `incomplete_before` take."""
    return {"now": now, "incomplete_before": now - INCOMPLETE_EXPIRY}


def is_entitled(subscription: Any, now: datetime) -> bool:
    """Tell whether the subscription grants its plan's paid limits at `now`."""
    return subscription is not None and status_at(subscription, now) in ENTITLED_STATUSES


def best_type(types) -> str | None:
    """Return the largest of some plan types (PLAN_TYPE_ORDER), or None when there are none."""
    return max(types, key=PLAN_TYPE_ORDER.index, default=None)


def own_plan_type(subscription: Any, now: datetime, type_of_plan) -> str:
    """Return the type of the user's own plan: the subscription's while it is entitled, else
    FREE. `type_of_plan(plan_id)` names a plan's type (the reads' in-process plan snapshot)."""
    return type_of_plan(subscription.plan_id) if is_entitled(subscription, now) else FREE


def plan_type(subscription: Any, now: datetime, type_of_plan, team_types=()) -> str:
    """Return the plan type whose limits apply: the best of the user's own plan and the plans
    of their teams (`team_types`, one type per team, or the best of them)."""
    return best_type((own_plan_type(subscription, now, type_of_plan), *team_types))


def plan_source(own_type: str, team_types) -> str:
    """Tell where the best plan comes from: `team` when a team's beats the user's own, else
    `personal` (a tie is the user's own)."""
    best_team = best_type(team_types)
    if best_team is not None and PLAN_TYPE_ORDER.index(best_team) > PLAN_TYPE_ORDER.index(own_type):
        return "team"
    return "personal"


def constant(value: str | int) -> sa.ColumnElement:
    """A constant written into the SQL, not a bind parameter: the hot paths' statements stay
    short (psycopg keeps its conversion of a statement's text only up to 4 KiB) and carry no
    parameter for it. Plan types and statuses are plain words."""
    return sa.literal_column(f"'{value}'" if isinstance(value, str) else str(int(value)))


def _rank_sql(plan_type: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    """A plan type's place in PLAN_TYPE_ORDER, in SQL (NULL for NULL).

    The simple form (`CASE x WHEN … THEN …`) writes `x` once: the searched form would repeat
    it, a subquery, in every branch, and the nested forms of `plan_type_sql` would grow the
    statement's text (and its parsing and planning) by the product of their branches."""
    return sa.case(*((constant(name), constant(rank)) for rank, name in _ORDER), value=plan_type)


def _type_of_rank_sql(rank: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    """The plan type at a place of PLAN_TYPE_ORDER, in SQL (NULL for NULL); the simple form,
    as `_rank_sql`."""
    return sa.case(*((constant(place), constant(name)) for place, name in _ORDER), value=rank)


_ORDER = tuple(enumerate(PLAN_TYPE_ORDER))


class _Greatest(sa.sql.expression.FunctionElement):
    """The larger of two integers: `greatest` on PostgreSQL, the two-argument `max` on SQLite."""

    type = sa.Integer()
    name = "greatest"
    inherit_cache = True


@compiles(_Greatest)
def _greatest(element, compiler, **kw) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


@compiles(_Greatest, "sqlite")
def _greatest_sqlite(element, compiler, **kw) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


def _team_rank_sql(user_id: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    """The rank of the best plan among the teams of user `user_id`; NULL without a team.

    The outer SELECT is over `team_members` alone, which has no `id`: inside a RETURNING
    clause the users row's `id` may be written bare, and must still mean the users row's.
    """
    plans, teams, members = Plan.__table__, Team.__table__, TeamMember.__table__
    team_type = (
        sa.select(plans.c.type)
        .select_from(teams.join(plans, plans.c.id == teams.c.plan_id))
        .where(teams.c.id == members.c.team_id)
        .correlate(members)
        .scalar_subquery()
    )
    return (
        sa.select(sa.func.max(_rank_sql(team_type)))
        .where(members.c.user_id == user_id)
        .correlate_except(members)
        .scalar_subquery()
    )


def team_plan_type_sql(user_id: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    """The best plan type among the teams of user `user_id`, in SQL; NULL without a team (the
    principal's `team_plan_type`, read with the session check)."""
    return _type_of_rank_sql(_team_rank_sql(user_id))


def own_plan_type_sql(
    now: sa.ColumnElement[datetime], incomplete_before: sa.ColumnElement[datetime]
) -> sa.ColumnElement[str]:
    """`own_plan_type` in SQL for the `users` row being read or updated: the type of the plan
    of its current subscription while that is entitled, else FREE.

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
    return sa.func.coalesce(entitled_type.scalar_subquery(), constant(FREE))


def plan_type_sql(
    now: sa.ColumnElement[datetime], incomplete_before: sa.ColumnElement[datetime]
) -> sa.ColumnElement[str]:
    """`plan_type` in SQL for the `users` row being read or updated: the best of its own plan
    (`own_plan_type_sql`) and its teams' plans. One expression, so the usage call stays one
    statement and judges the membership as the database holds it."""
    own_rank = _rank_sql(own_plan_type_sql(now, incomplete_before))
    team_rank = sa.func.coalesce(_team_rank_sql(User.__table__.c.id), constant(0))
    return _type_of_rank_sql(_Greatest(own_rank, team_rank))
