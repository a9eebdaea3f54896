"""Trials at the local provider, as Stripe runs them.

A trial starts with a $0 invoice and no charge; its period is the trial. A card given at the
start is saved for the first invoice (one that needs 3-D Secure to be saved leaves a pending
setup intent, Stripe's `pending_setup_intent`). At `trial_end` the first invoice is charged
off-session (coupon applied), and a trial with no card ends canceled, as Stripe's
`trial_settings.end_behavior.missing_payment_method=cancel`. `end_trial` is Stripe's
`trial_end=now`: the first invoice is charged at once, on-session.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from ... import clock
from ...extensions import db
from ...models import Coupon, Plan
from ..base import CouponLike, PlanLike, ProviderSubscription
from ..periods import period_end
from .idempotency import decode, encode, once
from .invoices import add_invoice, line, pay, pay_on_session, pending_items, plan_lines
from .models import LocalPaymentMethod, LocalSubscription, new_id
from .plan_changes import PENDING_UPDATE_EXPIRY
from .views import get_subscription, show


def start_trial(
    subscription: LocalSubscription, plan: PlanLike, coupon: CouponLike | None, days: int
) -> None:
    """Make a new subscription a trial of `days`: a $0 invoice, the coupon kept for later."""
    now = subscription.created_at
    trial_end = now + timedelta(days=days)
    subscription.status = "trialing"
    subscription.trial_end = trial_end
    subscription.current_period_end = trial_end
    subscription.billing_anchor = trial_end
    subscription.coupon_code = coupon.code if coupon is not None else None
    db.session.flush()
    invoice = add_invoice(
        subscription, "subscription_create", [line(f"Trial period for {plan.name}", 0)], now
    )
    pay(invoice, subscription, on_session=True)
    method = _card(subscription)
    if method is not None and method.behaviour == "authenticate":
        subscription.setup_intent_id = new_id("seti")
        subscription.setup_client_secret = (
            f"{subscription.setup_intent_id}_secret_{secrets.token_hex(8)}"
        )
        subscription.setup_status = "requires_action"
    db.session.flush()


def first_invoice_lines(subscription: LocalSubscription, plan: Plan) -> list[dict[str, Any]]:
    """Return the lines of the first paid invoice: pending items, the plan, its coupon."""
    lines = [
        line(item.description, item.amount, proration=True) for item in pending_items(subscription)
    ]
    coupon = db.session.get(Coupon, subscription.coupon_code) if subscription.coupon_code else None
    return lines + plan_lines(plan, coupon)


def end_at_trial_end(subscription: LocalSubscription) -> bool:
    """At `trial_end`, end a trial without a card (canceled); return whether it ended."""
    if _card(subscription) is not None and not subscription.cancel_at_period_end:
        return False
    subscription.status = "canceled"
    subscription.ended_at = subscription.current_period_end
    return True


def end_trial(subscription_id: str, idempotency_key: str) -> ProviderSubscription:
    """End the trial now and charge the first invoice on-session (Stripe's `trial_end=now`)."""

    def run() -> dict[str, Any]:
        subscription = get_subscription(subscription_id)
        if subscription.status != "trialing":
            return encode(show(subscription))
        now = clock.now()
        plan = db.session.get(Plan, subscription.plan_id)
        invoice = add_invoice(
            subscription, "subscription_update", first_invoice_lines(subscription, plan), now
        )
        invoice.period_start, invoice.period_end = now, period_end(now, plan.interval, 1)
        pay_on_session(invoice, subscription)
        if invoice.status == "paid":
            trial_ended(subscription, invoice.created_at)
        else:  # waits for 3-D Secure: the trial runs on until it is paid or lapses
            subscription.pending_plan_id = subscription.plan_id
            subscription.pending_expires_at = now + PENDING_UPDATE_EXPIRY
        db.session.flush()
        return encode(show(subscription))

    return decode(once(idempotency_key, "end_trial", subscription_id, {"trial_end": "now"}, run))


def trial_ended(subscription: LocalSubscription, at: datetime) -> None:
    """Start the first paid period at `at` (the trial ended early and its invoice was paid)."""
    plan = db.session.get(Plan, subscription.plan_id)
    for item in pending_items(subscription):
        item.invoice_id = subscription.latest_invoice_id
    subscription.status = "active"
    subscription.trial_end = at
    subscription.coupon_code = None
    subscription.billing_anchor = at
    subscription.current_period_start = at
    subscription.current_period_end = period_end(at, plan.interval, 1)
    subscription.pending_plan_id = None
    subscription.pending_expires_at = None
    subscription.cancel_at_period_end = False


def _card(subscription: LocalSubscription) -> LocalPaymentMethod | None:
    """Return the subscription's default card, if it has one."""
    if subscription.default_payment_method_id is None:
        return None
    return db.session.get(LocalPaymentMethod, subscription.default_payment_method_id)
