"""What a plan swap bills, worked out once for both the preview and the change itself.

Prorations are by the second from `clock.now()`, in integer cents rounded half up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import Coupon, Plan
from ..base import PlanLike
from ..periods import period_end
from .invoices import coupon_discount, line, pending_items
from .models import LocalCustomer, LocalInvoice, LocalSubscription


@dataclass(frozen=True, slots=True)
class Quote:
    """A plan swap worked out: lines billed now, lines left for the next invoice, totals."""

    now_lines: list[dict[str, Any]]
    later_lines: list[dict[str, Any]]
    new_period: bool
    proration_cents: int
    amount_due_cents: int
    next_billing_date: datetime
    next_billing_cents: int


def prorate(amount_cents: int, remaining_seconds: int, total_seconds: int) -> int:
    """Return `amount × remaining / total` rounded half up to the cent, in integers only."""
    if total_seconds <= 0:
        return 0
    return (2 * amount_cents * remaining_seconds + total_seconds) // (2 * total_seconds)


def quote(
    subscription: LocalSubscription, new_plan: PlanLike, behaviour: str, now: datetime
) -> Quote:
    """Work out a swap to `new_plan` at `now`: the one computation behind preview and change.

    Stripe's meanings: a new interval starts a new period now and bills it now whatever the
    behaviour; `none` makes no proration; on the same interval `always_invoice` bills the
    proration now and `create_prorations` leaves it for the next invoice. The credit for
    unused time is a share of what this period's invoice actually charged.
    """
    if subscription.status == "trialing":
        return _trial_quote(subscription, new_plan)
    old_plan = db.session.get(Plan, subscription.plan_id)
    new_price = new_plan.price_cents or 0
    new_period = old_plan.interval != new_plan.interval
    total = int(
        (subscription.current_period_end - subscription.current_period_start).total_seconds()
    )
    remaining = max(0, int((subscription.current_period_end - now).total_seconds()))
    prorations: list[dict[str, Any]] = []
    if behaviour != "none":
        credit = prorate(_charged_for_period(subscription, old_plan), remaining, total)
        prorations.append(line(f"Unused time on {old_plan.name}", -credit, proration=True))
        if not new_period:
            prorations.append(
                line(
                    f"Remaining time on {new_plan.name}",
                    prorate(new_price, remaining, total),
                    proration=True,
                )
            )
    if new_period:
        now_lines = [*prorations, line(f"1 × {new_plan.name}", new_price, plan_id=new_plan.id)]
        later_lines: list[dict[str, Any]] = []
    elif behaviour == "always_invoice":
        now_lines, later_lines = prorations, []
    else:
        now_lines, later_lines = [], prorations
    customer = db.session.get(LocalCustomer, subscription.customer_id)
    balance = customer.balance_cents
    if now_lines:
        billed = sum(item["amount"] for item in now_lines) + balance
        amount_due, balance = max(0, billed), min(0, billed)
    else:
        amount_due = 0
    pending = sum(item.amount for item in pending_items(subscription))
    pending += sum(item["amount"] for item in later_lines)
    next_date = (
        period_end(now, new_plan.interval, 1) if new_period else subscription.current_period_end
    )
    return Quote(
        now_lines=now_lines,
        later_lines=later_lines,
        new_period=new_period,
        proration_cents=sum(item["amount"] for item in now_lines + later_lines),
        amount_due_cents=amount_due,
        next_billing_date=next_date,
        next_billing_cents=max(0, new_price + pending + balance),
    )


def _trial_quote(subscription: LocalSubscription, new_plan: PlanLike) -> Quote:
    """A swap during a trial: nothing billed, the trial kept; the first invoice is the new
    plan's (its coupon applied), at `trial_end`."""
    price = new_plan.price_cents or 0
    coupon = db.session.get(Coupon, subscription.coupon_code) if subscription.coupon_code else None
    if coupon is not None:
        price -= coupon_discount(price, coupon)
    customer = db.session.get(LocalCustomer, subscription.customer_id)
    return Quote(
        now_lines=[],
        later_lines=[],
        new_period=False,
        proration_cents=0,
        amount_due_cents=0,
        next_billing_date=subscription.current_period_end,
        next_billing_cents=max(0, price + customer.balance_cents),
    )


def _charged_for_period(subscription: LocalSubscription, plan: Plan) -> int:
    """Return what the current period's invoice actually charged for `plan` (discounts in).

    The plan's list price when no paid invoice of this period bills it (a same-interval
    swap made it the plan mid-period).
    """
    invoices = db.session.scalars(
        sa.select(LocalInvoice)
        .where(
            LocalInvoice.subscription_id == subscription.id,
            LocalInvoice.status == "paid",
            LocalInvoice.period_start == subscription.current_period_start,
        )
        .order_by(LocalInvoice.created_at.desc(), LocalInvoice.id.desc())
    )
    for invoice in invoices:
        charged = [item["amount"] for item in invoice.lines if item.get("plan") == plan.id]
        if charged:
            return sum(charged)
    return plan.price_cents or 0
