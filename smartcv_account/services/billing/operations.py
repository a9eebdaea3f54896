"""The operator's and the scheduler's billing work: renewals due, assigned plans, the catalogue."""

from __future__ import annotations

import sqlalchemy as sa

from ... import clock
from ...catalogue import FREE_PLAN_ID
from ...extensions import db
from ...models import (
    LIVE_STATUSES,
    Coupon,
    Plan,
    Subscription,
    User,
)
from ...payments import get_gateway
from ...rules.due import due_sql
from ..identity import new_public_id
from ..plans import get_plan
from .provider_state import PLACEHOLDER_TIMEOUT, call_gateway, refresh_if_due


def advance_due_subscriptions(limit: int = 500) -> int:
    """Renew or end every subscription whose period is over; return how many were advanced."""
    now = clock.now()
    due = db.session.scalars(
        sa.select(Subscription)
        .where(due_sql(now))
        .order_by(Subscription.current_period_end)
        .limit(limit)
    ).all()
    for subscription in due:
        refresh_if_due(subscription)
    _release_abandoned_placeholders()
    return len(due)


def _release_abandoned_placeholders() -> None:
    """Free the slot held by a create that died before reaching the provider (a crash)."""
    db.session.execute(
        sa.delete(Subscription).where(
            Subscription.status == "INCOMPLETE",
            Subscription.provider_subscription_id.is_(None),
            Subscription.created_at < clock.now() - PLACEHOLDER_TIMEOUT,
        )
    )
    db.session.commit()


def assign_plan(user: User, plan_id: str) -> Subscription | None:
    """Put a user on a plan without billing (enterprise and comped accounts); FREE ends it."""
    plan = get_plan(plan_id)
    if plan is None:
        raise LookupError(f"no plan {plan_id}")
    current = user.current_subscription
    if current is not None and current.status in LIVE_STATUSES:
        if current.provider_subscription_id is None and current.plan_id == plan.id:
            return current  # already on it: assigning again changes nothing
        if current.provider_subscription_id is not None:
            raise ValueError(_paid_subscription_in_the_way(current))
        current.status = "CANCELED"
        current.canceled_at = clock.now()
        db.session.flush()
    if plan.id == FREE_PLAN_ID:
        db.session.commit()
        return None
    now = clock.now()
    subscription = Subscription(
        public_id=new_public_id("sub"),
        user_id=user.id,
        plan_id=plan.id,
        status="ACTIVE",
        current_period_start=now,
        cancel_at_period_end=False,
        created_at=now,
        updated_at=now,
    )
    db.session.add(subscription)
    user.current_subscription = subscription
    db.session.commit()
    return subscription


def _paid_subscription_in_the_way(subscription: Subscription) -> str:
    """Explain to an operator why a paid subscription blocks assigning a plan, and what to do."""
    if subscription.cancel_at_period_end:
        return (
            f"the user's paid subscription {subscription.public_id} is already canceled and runs"
            f" until {clock.isoformat(subscription.current_period_end)}, which the customer paid"
            " for; assign the plan after that date (once `advance-subscriptions` has ended it)"
        )
    return (
        f"the user has a paid subscription ({subscription.public_id}, {subscription.status}):"
        " the customer cancels it (PUT /api/account/subscription, action cancel) and the plan"
        " is assigned once it has ended"
    )


def seed_plans(plans: list[dict], coupons: list[dict]) -> tuple[int, int]:
    """Create or update the plans and coupons; return (plans written, coupons written)."""
    for values in plans:
        plan = db.session.get(Plan, values["id"]) or Plan(id=values["id"])
        for key, value in values.items():
            setattr(plan, key, value)
        db.session.add(plan)
    for values in coupons:
        coupon = db.session.get(Coupon, values["code"]) or Coupon(code=values["code"])
        for key, value in values.items():
            setattr(coupon, key, value)
        db.session.add(coupon)
    db.session.commit()
    all_plans = db.session.scalars(sa.select(Plan).order_by(Plan.rank)).all()
    all_coupons = db.session.scalars(sa.select(Coupon)).all()
    call_gateway(get_gateway().sync_catalogue, list(all_plans), list(all_coupons))
    return len(plans), len(coupons)


REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def refund_invoice(invoice_id: str, amount_cents: int | None, reason: str | None) -> int:
    """Refund all (None) or part of a paid invoice through the gateway; return the total
    refunded. The subscription is not changed (an operator's command; it commits).

    The provider's idempotency key is the intent (invoice, amount, reason) and what was
    refunded before, which the gateway adds: a retried command never refunds twice.
    """
    if reason is not None and reason not in REFUND_REASONS:
        raise ValueError(f"reason must be one of {', '.join(REFUND_REASONS)}")
    key = f"refund:{invoice_id}:{amount_cents if amount_cents is not None else 'all'}:{reason}"
    try:
        refunded = get_gateway().refund_invoice(invoice_id, amount_cents, reason, key)
    except Exception:
        db.session.rollback()
        raise  # the operator's command reports the provider's own words
    db.session.commit()
    return refunded
