"""Finding a local subscription and showing it as the gateway's ProviderSubscription."""

from __future__ import annotations

from ...extensions import db
from ...models import Coupon, Plan
from ..base import ProviderSubscription
from ..statuses import service_status
from .customers import card_details
from .invoices import coupon_discount, latest_invoice, pending_items
from .models import LocalCustomer, LocalPaymentMethod, LocalSubscription


def get_subscription(subscription_id: str) -> LocalSubscription:
    """Return a local subscription by id (LookupError when there is none)."""
    subscription = db.session.get(LocalSubscription, subscription_id)
    if subscription is None:
        raise LookupError(f"no local subscription {subscription_id}")
    return subscription


def show(subscription: LocalSubscription) -> ProviderSubscription:
    """Show a local subscription in the gateway's vocabulary."""
    invoice = latest_invoice(subscription)
    method = (
        db.session.get(LocalPaymentMethod, subscription.default_payment_method_id)
        if subscription.default_payment_method_id
        else None
    )
    waiting = (
        invoice is not None
        and invoice.status == "open"
        and invoice.payment_status == "requires_action"
    )
    # A trial's card that waits for 3-D Secure to be saved (Stripe's pending_setup_intent).
    setting_up = subscription.setup_status == "requires_action" and not waiting
    secret = invoice.client_secret if invoice else None
    return ProviderSubscription(
        id=subscription.id,
        customer_id=subscription.customer_id,
        plan_id=subscription.plan_id,
        status=service_status(subscription.status),
        current_period_start=subscription.current_period_start,
        current_period_end=subscription.current_period_end,
        cancel_at_period_end=subscription.cancel_at_period_end,
        trial_end=subscription.trial_end,
        payment_method=card_details(method) if method else None,
        latest_invoice_id=invoice.id if invoice else None,
        latest_invoice_amount_cents=invoice.total if invoice else None,
        client_secret=subscription.setup_client_secret if setting_up else secret,
        next_action={"type": "use_stripe_sdk"} if waiting or setting_up else None,
        pending_plan_id=subscription.pending_plan_id,
        pending_expires_at=subscription.pending_expires_at,
        next_invoice_amount_cents=_next_amount(subscription),
        next_payment_attempt=invoice.next_payment_attempt if invoice else None,
        **_owed(invoice),
        # A disputed payment is the latest invoice's: the test card is disputed right after it.
        dispute_id=invoice.id if invoice and invoice.dispute_status == "needs_response" else None,
    )


def _owed(invoice) -> dict:
    """What the open latest invoice still asks for (none when it is not open)."""
    if invoice is None or invoice.status != "open":
        return {}
    return {
        "latest_payment_status": invoice.payment_status or "requires_payment_method",
        "latest_payment_cents": invoice.amount_due - invoice.amount_paid,
    }


def _next_amount(subscription: LocalSubscription) -> int | None:
    """Return what the next regular invoice will charge, or None when none is coming."""
    if subscription.status not in ("active", "trialing", "past_due"):
        return None
    if subscription.cancel_at_period_end:
        return None
    plan = db.session.get(Plan, subscription.plan_id)
    customer = db.session.get(LocalCustomer, subscription.customer_id)
    pending = sum(item.amount for item in pending_items(subscription))
    price = plan.price_cents or 0
    coupon = db.session.get(Coupon, subscription.coupon_code) if subscription.coupon_code else None
    if coupon is not None:  # a trial's coupon, kept for its first paid invoice
        price -= coupon_discount(price, coupon)
    return max(0, price + pending + customer.balance_cents)
