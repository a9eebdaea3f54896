"""Plan swaps through Stripe: previewed and made at the same second, `pending_if_incomplete`."""

from __future__ import annotations

import time
from typing import Any

import stripe

from ..base import PRORATION_BEHAVIORS, ChangePreview, PaymentDeclined, PlanChange, PlanLike
from .errors import translate_errors
from .objects import (
    decline,
    expanded,
    get,
    id_of,
    interval,
    is_proration,
    item,
    latest_intent,
    period,
    timestamp,
)
from .subscriptions import void_invoice, with_upcoming
from .translate import SUBSCRIPTION_EXPAND, subscription_view
from .trials import change_during_trial, preview_during_trial


def preview_change(
    client: stripe.StripeClient, subscription_id: str, new_plan: PlanLike, proration_behavior: str
) -> ChangePreview:
    """Return what swapping to `new_plan` now would create, bill now and bill next."""
    _check_behavior(proration_behavior)
    with translate_errors():
        subscription = client.v1.subscriptions.retrieve(subscription_id)
    if subscription["status"] == "trialing":
        return preview_during_trial(client, subscription, new_plan)
    return _preview(client, subscription, new_plan, proration_behavior, int(time.time()))


def change_plan(
    client: stripe.StripeClient,
    subscription_id: str,
    new_plan: PlanLike,
    proration_behavior: str,
    idempotency_key: str,
) -> PlanChange:
    """Swap the plan with `payment_behavior=pending_if_incomplete`, then clear a pending cancel.

    Stripe applies such a swap only once its invoice is paid: a decline leaves a pending
    update with an open invoice, which is voided here (voiding discards the update), so a
    declined swap changes nothing; a payment needing 3-D Secure stays pending.
    `cancel_at_period_end` is not a pending-update parameter: it is cleared by a second call
    once the swap applied.
    """
    _check_behavior(proration_behavior)
    with translate_errors():
        subscription = client.v1.subscriptions.retrieve(subscription_id)
    if subscription["status"] == "trialing":
        return change_during_trial(client, subscription, new_plan, idempotency_key)
    # Stripe's clock, not the service's (tests freeze that one); the same second for the
    # preview and the swap makes the amount we report the amount Stripe bills.
    proration_date = int(time.time())
    proration_cents = _preview(
        client, subscription, new_plan, proration_behavior, proration_date
    ).proration_cents
    params: dict[str, Any] = {
        # `price`, not `plan`: Stripe's pending updates allow `items.price` and `items.quantity`
        # only (a plan id is a price id to Stripe, so the same id works).
        "items": [{"id": item(subscription)["id"], "price": new_plan.id}],
        "proration_behavior": proration_behavior,
        "proration_date": proration_date,
        "payment_behavior": "pending_if_incomplete",
        "expand": SUBSCRIPTION_EXPAND,
    }
    with translate_errors():
        updated = client.v1.subscriptions.update(
            subscription_id, params=params, options={"idempotency_key": idempotency_key}
        )
    invoice = expanded(get(updated, "latest_invoice"))
    intent = latest_intent(updated)
    if get(updated, "pending_update") and intent is not None:
        if intent["status"] == "requires_payment_method":
            with translate_errors():
                void_invoice(client, invoice["id"])
            raise PaymentDeclined(*decline(intent))
        return PlanChange(subscription_view(updated), proration_cents, 0)
    if bool(get(updated, "cancel_at_period_end", False)):
        with translate_errors():
            updated = client.v1.subscriptions.update(
                subscription_id,
                params={"cancel_at_period_end": False, "expand": SUBSCRIPTION_EXPAND},
                options={"idempotency_key": idempotency_key + ":keep"},
            )
    billed_now = (
        invoice is not None
        and get(invoice, "billing_reason") == ("subscription_update")
        and get(invoice, "created", 0) >= proration_date
    )
    amount_due = int(get(invoice, "amount_paid", 0)) if billed_now else 0
    provider = with_upcoming(client, subscription_view(updated))
    return PlanChange(provider, proration_cents, amount_due)


def _preview(
    client: stripe.StripeClient,
    subscription: Any,
    new_plan: PlanLike,
    proration_behavior: str,
    proration_date: int,
) -> ChangePreview:
    """Work out a swap from Stripe's invoice preview of it: created, billed now, billed next.

    The amount created sums the prorations and a new period starting now. When Stripe
    invoices at once (a new interval, or `always_invoice`) that is billed now, less the
    credit balance, and the next invoice is the new plan's price less any credit left;
    otherwise nothing is billed now and the preview is the next invoice itself.
    """
    with translate_errors():
        preview = client.v1.invoices.create_preview(
            params={
                # Stripe infers the customer from the subscription; localstripe needs it.
                "customer": id_of(subscription["customer"]),
                "subscription": subscription["id"],
                "subscription_details": {
                    "items": [{"id": item(subscription)["id"], "plan": new_plan.id}],
                    "proration_behavior": proration_behavior,
                    "proration_date": proration_date,
                },
            }
        )
    period_end = period(subscription)[1]
    new_period = interval(subscription) != new_plan.interval
    total, next_end = 0, period_end
    for line in preview["lines"]["data"]:
        # A line of the next regular period (same interval) is billed then, not by this
        # change. A change of interval restarts the period now: its first period line is
        # billed now, next to the credit for the unused time (monthly -> yearly ~ 27000).
        starts_before_end = int(line["period"]["start"]) < period_end
        if is_proration(line) or starts_before_end:
            total += int(line["amount"])
        if new_period and not is_proration(line):
            next_end = int(line["period"]["end"])
    balance = int(get(preview, "starting_balance", 0))
    if not new_period and proration_behavior != "always_invoice":
        if proration_behavior == "none":
            total = 0
        upcoming = get(preview, "amount_due")
        return ChangePreview(
            total, 0, timestamp(period_end), None if upcoming is None else int(upcoming)
        )
    left = min(0, total + balance)
    return ChangePreview(
        total,
        max(0, total + balance),
        timestamp(next_end),
        max(0, (new_plan.price_cents or 0) + left),
    )


def _check_behavior(proration_behavior: str) -> None:
    """Refuse a proration behaviour Stripe doesn't know (schemas validate it before us)."""
    if proration_behavior not in PRORATION_BEHAVIORS:
        raise ValueError(f"unknown proration_behavior {proration_behavior!r}")
