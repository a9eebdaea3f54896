"""Stripe's subscriptions, cards and invoices in the gateway's vocabulary."""

from __future__ import annotations

from typing import Any

from ..base import CardDetails, InvoiceSummary, ProviderSubscription, UnknownPaymentMethod
from ..statuses import service_status
from .objects import as_dict, expanded, get, id_of, item, latest_intent, period, timestamp

# Expansions that let one call return everything ProviderSubscription needs: the first payment's
# intent (declines, 3-D Secure) and the customer's default card (the subscription bills it).
SUBSCRIPTION_EXPAND = [
    "latest_invoice.payment_intent",
    "customer.invoice_settings.default_payment_method",
]


def card(payment_method: Any) -> CardDetails:
    """Return the API's view of a card payment method (never its number)."""
    details = get(payment_method, "card")
    if details is None:
        raise UnknownPaymentMethod(f"{payment_method['id']} is not a card")
    return CardDetails(
        payment_method_id=payment_method["id"],
        type=payment_method["type"],
        brand=details["brand"],
        last4=details["last4"],
        exp_month=int(details["exp_month"]),
        exp_year=int(details["exp_year"]),
    )


def subscription_view(
    subscription: Any, payment_method: CardDetails | None = None
) -> ProviderSubscription:
    """Translate a Stripe subscription (with SUBSCRIPTION_EXPAND) into ProviderSubscription."""
    status = service_status(subscription["status"])
    first = item(subscription)
    plan = get(first, "plan") or get(first, "price")
    start, end = period(subscription)
    invoice = expanded(get(subscription, "latest_invoice"))
    intent = latest_intent(subscription)
    if payment_method is None:
        customer = expanded(get(subscription, "customer"))
        settings = get(customer, "invoice_settings")
        default = expanded(get(settings, "default_payment_method"))
        payment_method = card(default) if default is not None else None
    # The next action only while the payment waits for the customer; the secret whenever there
    # is an intent, as Stripe integrations (and the local gateway) hand it to the client.
    pending = get(subscription, "pending_update")
    waiting = (
        intent is not None
        and intent["status"] == "requires_action"
        and (status in ("INCOMPLETE", "PAST_DUE") or bool(pending))
    )
    pending_items = get(pending, "subscription_items") or []
    pending_plan = (
        get(pending_items[0], "plan") or get(pending_items[0], "price") if pending_items else None
    )
    if pending and pending_plan is None:
        pending_plan = plan  # `trial_end=now` waiting for its payment: the plan stays
    # A trial's card that needs 3-D Secure to be saved (a SetupIntent waiting for the customer).
    setup = expanded(get(subscription, "pending_setup_intent"))
    setting_up = setup is not None and get(setup, "status") == "requires_action"
    amount = get(invoice, "total", get(invoice, "amount_due"))
    return ProviderSubscription(
        id=subscription["id"],
        customer_id=id_of(subscription["customer"]),
        plan_id=plan["id"],
        status=status,
        current_period_start=timestamp(start),
        current_period_end=timestamp(end),
        cancel_at_period_end=bool(get(subscription, "cancel_at_period_end", False)),
        trial_end=timestamp(get(subscription, "trial_end")),
        payment_method=payment_method,
        latest_invoice_id=id_of(get(subscription, "latest_invoice")),
        latest_invoice_amount_cents=None if amount is None else int(amount),
        client_secret=get(setup, "client_secret") if setting_up else get(intent, "client_secret"),
        next_action=_next_action(intent if waiting else setup if setting_up else None),
        **_owed(invoice, intent),
        pending_plan_id=get(pending_plan, "id") if pending_plan else None,
        pending_expires_at=timestamp(get(pending, "expires_at")) if pending else None,
    )


def _owed(invoice: Any, intent: Any) -> dict[str, Any]:
    """What the open latest invoice still asks for: its intent's status, the amount remaining
    and Stripe's hosted invoice page (none when it is not open)."""
    if invoice is None or get(invoice, "status") != "open":
        return {}
    status = get(intent, "status") if intent is not None else None
    remaining = get(invoice, "amount_remaining")
    if remaining is None:
        remaining = int(get(invoice, "amount_due", 0)) - int(get(invoice, "amount_paid", 0))
    return {
        "latest_payment_status": status
        if status in ("requires_action", "processing")
        else "requires_payment_method",
        "latest_payment_cents": int(remaining),
        "hosted_invoice_url": get(invoice, "hosted_invoice_url"),
    }


def _next_action(waiting: Any) -> dict[str, Any] | None:
    """Return the next action of an intent waiting for the customer, if any."""
    action = get(waiting, "next_action") if waiting is not None else None
    return as_dict(action) if action else None


def invoice_summary(invoice: Any) -> InvoiceSummary:
    """Show a Stripe invoice as GET /api/account/invoices does."""
    lines = get(get(invoice, "lines"), "data") or []
    plans = [get(get(line, "plan") or get(line, "price"), "id") for line in lines]
    discounts = get(invoice, "total_discount_amounts") or []
    return InvoiceSummary(
        id=invoice["id"],
        number=get(invoice, "number"),
        status=invoice["status"],
        total=int(get(invoice, "total", 0)),
        amount_due=int(get(invoice, "amount_due", 0)),
        amount_paid=int(get(invoice, "amount_paid", 0)),
        amount_remaining=int(get(invoice, "amount_remaining", 0)),
        discount=sum(int(d["amount"]) for d in discounts),
        currency=str(get(invoice, "currency", "usd")).upper(),
        created_at=timestamp(invoice["created"]),
        period_start=timestamp(get(invoice, "period_start")),
        period_end=timestamp(get(invoice, "period_end")),
        plan_id=next((plan for plan in plans if plan), None),
        hosted_invoice_url=get(invoice, "hosted_invoice_url"),
        amount_refunded=int(get(expanded(get(invoice, "charge")), "amount_refunded", 0) or 0),
    )
