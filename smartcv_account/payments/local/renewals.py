"""The local provider's clock: renewing subscriptions, retrying failed renewals, expiring.

Stripe does this work on its own clock; here `advance` does it when the service asks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ... import clock
from ...extensions import db
from ...models import Plan
from ...rules.entitlement import INCOMPLETE_EXPIRY
from ..base import ProviderSubscription
from ..periods import period_end
from .cards import charge
from .invoices import add_invoice, latest_invoice, pay, pending_items, void
from .models import LocalInvoice, LocalSubscription
from .trials import end_at_trial_end, first_invoice_lines
from .views import get_subscription, show

# Local dunning: a failed renewal is charged again this long after it failed; when the last
# retry fails the subscription is canceled (Stripe's "Smart Retries" pick their own times).
RETRY_DELAYS = (timedelta(days=1), timedelta(days=3), timedelta(days=5))


def advance(subscription_id: str) -> ProviderSubscription:
    """Run the provider's clock: renew each period that has ended, or end the subscription."""
    subscription = get_subscription(subscription_id)
    now = clock.now()
    if subscription.status == "incomplete" and subscription.created_at <= now - INCOMPLETE_EXPIRY:
        subscription.status = "incomplete_expired"
        subscription.ended_at = now
        invoice = latest_invoice(subscription)
        if invoice is not None and invoice.status == "open":
            void(invoice)
    if subscription.pending_expires_at is not None and subscription.pending_expires_at <= now:
        _discard_pending_update(subscription)
    while True:
        retry = _due_retry(subscription, now)
        if retry is not None:
            _retry(subscription, retry, now)
            continue
        if subscription.status not in ("active", "past_due", "trialing") or (
            subscription.current_period_end > now
        ):
            break
        if subscription.status == "trialing" and end_at_trial_end(subscription):
            break  # no card (Stripe's missing_payment_method=cancel), or canceled in the trial
        if subscription.cancel_at_period_end or subscription.status == "past_due":
            # A pending cancel takes effect; an invoice still unpaid a whole period later
            # ends the subscription, as Stripe's default dunning settings do.
            subscription.status = "canceled"
            subscription.ended_at = subscription.current_period_end
            break
        _renew(subscription)
    db.session.flush()
    return show(subscription)


def _renew(subscription: LocalSubscription) -> None:
    """Start the next period and charge it off-session (a decline makes it past_due).

    The invoice carries the pending invoice items (prorations left for it).
    """
    plan = db.session.get(Plan, subscription.plan_id)
    start = subscription.current_period_end
    cycles = 1
    while period_end(subscription.billing_anchor, plan.interval, cycles) <= start:
        cycles += 1
    subscription.current_period_start = start
    subscription.current_period_end = period_end(subscription.billing_anchor, plan.interval, cycles)
    items = pending_items(subscription)
    lines = first_invoice_lines(subscription, plan)  # a trial's coupon goes on its first
    subscription.coupon_code = None
    invoice = add_invoice(subscription, "subscription_cycle", lines, start)
    for item in items:
        item.invoice_id = invoice.id
    pay(invoice, subscription, on_session=False)
    invoice.attempt_count = 1
    if invoice.status == "paid":
        subscription.status = "active"
    else:
        subscription.status = "past_due"
        invoice.next_payment_attempt = invoice.created_at + RETRY_DELAYS[0]


def _due_retry(subscription: LocalSubscription, now: datetime) -> LocalInvoice | None:
    """Return the past-due invoice whose next retry falls before `now` and the period end."""
    if subscription.status != "past_due":
        return None
    invoice = latest_invoice(subscription)
    if invoice is None or invoice.status != "open" or invoice.next_payment_attempt is None:
        return None
    due = invoice.next_payment_attempt
    return invoice if due <= now and due < subscription.current_period_end else None


def _retry(subscription: LocalSubscription, invoice: LocalInvoice, now: datetime) -> None:
    """Charge the default card again; after the last failed retry, cancel the subscription.

    A retry the job reaches late (days without it) runs once, and the next one keeps its gap
    from this one: retries are never fired back to back, as Stripe's spread over days.
    """
    attempted_at = invoice.next_payment_attempt
    charge(invoice, subscription, on_session=False)
    invoice.attempt_count += 1
    if invoice.status == "paid":
        subscription.status = "active"
    elif invoice.attempt_count > len(RETRY_DELAYS):
        # Stripe's subscription setting "cancel the subscription" after all retries fail,
        # with the invoice marked uncollectible: nothing more will be tried.
        invoice.status, invoice.next_payment_attempt = "uncollectible", None
        subscription.status = "canceled"
        subscription.ended_at = attempted_at
    else:
        tried = invoice.attempt_count - 1  # retries so far
        scheduled = invoice.created_at + RETRY_DELAYS[tried]
        gap = RETRY_DELAYS[tried] - RETRY_DELAYS[tried - 1]
        invoice.next_payment_attempt = scheduled if scheduled > now else now + gap


def _discard_pending_update(subscription: LocalSubscription) -> None:
    """Drop a pending plan swap and void the invoice that would have paid for it."""
    invoice = latest_invoice(subscription)
    if invoice is not None and invoice.status == "open":
        void(invoice)
    subscription.pending_plan_id = None
    subscription.pending_expires_at = None
