"""Plan definitions as the read paths see them: held in-process for a short time.

Every SmartCV page load shows the user's plan (the account's `subscriptionType`, GET
subscription's plan and price), yet plans are written only by `flask seed-plans`, a few times a
year. Reading them with a query per request would cost more than the rest of the request, so
reads that only *show* a plan use a snapshot of all plans held per application for
`PLAN_CACHE_SECONDS` (60 s by default; 0 reads the database every time). Decisions that move
money (creating or changing a subscription) still read the row itself (`billing.get_plan`).

A flush that writes a plan in this process drops the snapshot at once; other processes (the
other gunicorn workers, other instances) see the change within `PLAN_CACHE_SECONDS`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from .. import clock
from ..extensions import db
from ..models import Plan
from ..principal import Principal, read_team_plan_type
from ..rules import entitlement

_CACHE_KEY = "smartcv_plan_snapshot"
# Bumped by every plan written in this process; a snapshot of an older generation is stale.
_generation = 0


@dataclass(frozen=True, slots=True)
class PlanSnapshot:
    """A plan's definition, detached from any database session."""

    id: str
    type: str
    name: str
    price_cents: int | None
    currency: str
    interval: str
    features: tuple[str, ...]
    self_serve: bool
    rank: int
    trial_days: int = 0


@dataclass(frozen=True, slots=True)
class _Snapshot:
    plans: dict[str, PlanSnapshot]
    expires: float
    generation: int


def _freeze(plan: Plan) -> PlanSnapshot:
    """Copy a plan row into an immutable snapshot."""
    return PlanSnapshot(
        id=plan.id,
        type=plan.type,
        name=plan.name,
        price_cents=plan.price_cents,
        currency=plan.currency,
        interval=plan.interval,
        features=tuple(plan.features or ()),
        self_serve=plan.self_serve,
        rank=plan.rank,
        trial_days=plan.trial_days or 0,
    )


def _load(ttl: float) -> _Snapshot:
    """Read every plan (a handful of rows) in one query."""
    plans = {plan.id: _freeze(plan) for plan in db.session.scalars(sa.select(Plan))}
    return _Snapshot(plans, time.monotonic() + ttl, _generation)


def plan_for_display(plan_id: str) -> PlanSnapshot | None:
    """Return a plan's definition for showing it, from the in-process snapshot when fresh."""
    app = current_app
    ttl = app.config.get("PLAN_CACHE_SECONDS", 60)
    if ttl <= 0:
        plan = db.session.get(Plan, plan_id)
        return _freeze(plan) if plan is not None else None
    snapshot = app.extensions.get(_CACHE_KEY)
    if (
        snapshot is None
        or snapshot.generation != _generation
        or time.monotonic() >= snapshot.expires
        or plan_id not in snapshot.plans  # a plan added since (another process seeded it)
    ):
        snapshot = app.extensions[_CACHE_KEY] = _load(ttl)
    return snapshot.plans.get(plan_id)


@sa.event.listens_for(Plan, "after_insert")
@sa.event.listens_for(Plan, "after_update")
@sa.event.listens_for(Plan, "after_delete")
def _plan_written(mapper, connection, target) -> None:
    """Make every snapshot of this process stale once a plan is written."""
    global _generation
    _generation += 1


def public_plans() -> list[PlanSnapshot]:
    """Return the plans anyone can be on without sales: free and self-serve, cheapest first."""
    plans = db.session.scalars(
        sa.select(Plan).where(sa.or_(Plan.self_serve.is_(True), Plan.price_cents == 0))
    )
    return sorted((_freeze(plan) for plan in plans), key=lambda p: (p.price_cents or 0, p.rank))


def plan_type(plan_id: str) -> str:
    """Return a plan's type from the in-process plan snapshot (no query per request)."""
    return plan_for_display(plan_id).type


def team_types(user) -> tuple[str, ...]:
    """The best plan type of the user's teams, as a tuple (empty without a team): the
    principal carries it; for a model it is read (one SELECT)."""
    if isinstance(user, Principal):
        best = user.team_plan_type
    else:
        best = read_team_plan_type(user.id)
    return () if best is None else (best,)


def effective_plan_type(user) -> str:
    """Return the plan type whose limits apply to the principal `user` now: the best of their
    own plan and their teams' (rules/entitlement.py)."""
    return entitlement.plan_type(
        user.current_subscription, clock.now(), plan_type, team_types(user)
    )


def get_plan(plan_id: str) -> Plan | None:
    """Return a plan by id."""
    return db.session.get(Plan, plan_id)
