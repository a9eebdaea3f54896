"""Local subscriptions: starting one, cancelling it, its card, and paying its open invoice."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ... import clock
from ...extensions import db
from ...models import Plan
from ..base import (
    CardDetails,
    CouponLike,
    GatewayError,
    PaymentDeclined,
    PlanLike,
    ProviderSubscription,
)
from ..periods import period_end
from .cards import charge
from .customers import attach_payment_method
from .idempotency import decode, encode, once
from .invoices import add_invoice, latest_invoice, pay, plan_lines, void
from .models import LocalInvoice, LocalSubscription, new_id
from .plan_changes import apply_swap
from .trials import start_trial, trial_ended
from .views import get_subscription, show


def create_subscription(
    customer_id: str,
    plan: PlanLike,
    payment_method: CardDetails | None,
    coupon: CouponLike | None,
    idempotency_key: str,
    trial_days: int = 0,
) -> ProviderSubscription:
    """Start a subscription and pay its first invoice on-session (3-D Secure may be needed).

    A declined first payment leaves what Stripe leaves: the customer, its card and an
    expired subscription whose invoice is void.
    """
    existing = db.session.scalar(
        sa.select(LocalSubscription).where(LocalSubscription.idempotency_key == idempotency_key)
    )
    if existing is not None:
        # The same request again: its first answer, a decline included (as Stripe replays it).
        invoice = latest_invoice(existing)
        if existing.status == "incomplete_expired" and invoice and invoice.decline_code:
            raise PaymentDeclined(invoice.decline_code)
        return show(existing)
    now = clock.now()
    subscription = LocalSubscription(
        id=new_id("sub"),
        customer_id=customer_id,
        plan_id=plan.id,
        status="incomplete",
        billing_anchor=now,
        current_period_start=now,
        current_period_end=period_end(now, plan.interval, 1),
        cancel_at_period_end=False,
        default_payment_method_id=payment_method.payment_method_id if payment_method else None,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    db.session.add(subscription)
    db.session.flush()  # the invoice below refers to it; no relationship orders the inserts
    if trial_days > 0:
        start_trial(subscription, plan, coupon, trial_days)
        return show(subscription)
    invoice = add_invoice(subscription, "subscription_create", plan_lines(plan, coupon), now)
    pay(invoice, subscription, on_session=True)
    if invoice.status == "paid":
        subscription.status = "active"
    elif invoice.payment_status == "requires_payment_method":
        void(invoice)
        subscription.status = "incomplete_expired"
        subscription.ended_at = now
        db.session.flush()
        raise PaymentDeclined(invoice.decline_code or "card_declined")
    db.session.flush()
    return show(subscription)


def retrieve_subscription(subscription_id: str) -> ProviderSubscription:
    """Read a local subscription (an unknown id is a GatewayError, as Stripe's 404 is)."""
    subscription = db.session.get(LocalSubscription, subscription_id)
    if subscription is None:
        raise GatewayError(f"No such subscription: {subscription_id!r}")
    return show(subscription)


def set_cancel_at_period_end(
    subscription_id: str, cancel: bool, idempotency_key: str | None
) -> ProviderSubscription:
    """Schedule or withdraw the cancellation at period end."""

    def run() -> dict[str, Any]:
        subscription = get_subscription(subscription_id)
        subscription.cancel_at_period_end = cancel
        db.session.flush()
        return encode(show(subscription))

    params = {"cancel_at_period_end": cancel}
    return decode(once(idempotency_key, "cancel_at", subscription_id, params, run))


def cancel_now(subscription_id: str, idempotency_key: str | None) -> ProviderSubscription:
    """End a subscription at once; an incomplete one's open invoice is voided, as in Stripe."""

    def run() -> dict[str, Any]:
        subscription = get_subscription(subscription_id)
        invoice = latest_invoice(subscription)
        if subscription.status == "incomplete" and invoice and invoice.status == "open":
            void(invoice)
        if subscription.status not in ("canceled", "incomplete_expired"):
            subscription.status = "canceled"
            subscription.ended_at = clock.now()
        db.session.flush()
        return encode(show(subscription))

    return decode(once(idempotency_key, "cancel", subscription_id, {}, run))


def update_payment_method(
    subscription_id: str, customer_id: str, payment_method_id: str, idempotency_key: str | None
) -> ProviderSubscription:
    """Make a new card the customer's and the subscription's default (no payment here)."""

    def run() -> dict[str, Any]:
        card = attach_payment_method(customer_id, payment_method_id)
        subscription = get_subscription(subscription_id)
        subscription.default_payment_method_id = card.payment_method_id
        db.session.flush()
        return encode(show(subscription))

    params = {"payment_method": payment_method_id}
    return decode(once(idempotency_key, "set_card", subscription_id, params, run))


def pay_open_invoice(subscription_id: str, idempotency_key: str) -> ProviderSubscription:
    """Pay the latest open invoice with the default card now, as Stripe's `invoices.pay`."""

    def run() -> dict[str, Any]:
        subscription = get_subscription(subscription_id)
        invoice = latest_invoice(subscription)
        if invoice is None or invoice.status != "open":
            return encode(show(subscription))
        charge(invoice, subscription, on_session=True)
        if invoice.payment_status == "requires_payment_method":
            db.session.flush()
            raise PaymentDeclined(invoice.decline_code or "card_declined")
        if invoice.status == "paid":
            invoice_paid(subscription, invoice)
        db.session.flush()
        return encode(show(subscription))

    return decode(once(idempotency_key, "pay", subscription_id, {}, run))


def invoice_paid(subscription: LocalSubscription, invoice: LocalInvoice) -> None:
    """What paying an open invoice does to its subscription: a pending swap applies."""
    if subscription.status == "trialing" and invoice.billing_reason == "subscription_update":
        trial_ended(subscription, invoice.created_at)  # an `end_trial` paid after 3-D Secure
    if subscription.pending_plan_id and invoice.billing_reason == "subscription_update":
        new_plan = db.session.get(Plan, subscription.pending_plan_id)
        old_plan = db.session.get(Plan, subscription.plan_id)
        new_period = old_plan.interval != new_plan.interval
        apply_swap(subscription, new_plan, new_period, invoice.created_at)
    if subscription.status in ("incomplete", "past_due", "unpaid"):
        subscription.status = "active"
