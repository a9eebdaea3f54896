"""Trials through Stripe: the create parameters, swaps during a trial, `trial_end=now`, previews.

Stripe's rules relied on (docs/billing.md names each with its test): `trial_period_days` starts
the trial; `trial_settings.end_behavior.missing_payment_method=cancel` ends a trial with no card
canceled; a card that needs authentication to be saved leaves a `pending_setup_intent`; a swap
during a trial keeps `trial_end` and bills nothing (`proration_behavior=none`); `trial_end=now`
ends the trial and invoices at once, and is a pending-update parameter, so with
`payment_behavior=pending_if_incomplete` a decline changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import stripe

from ..base import (
    ChangePreview,
    CouponLike,
    PaymentDeclined,
    PlanChange,
    PlanLike,
    ProviderSubscription,
)
from ..previews import create_preview
from .errors import translate_errors
from .objects import decline, expanded, get, item, latest_intent, period, timestamp
from .subscriptions import void_invoice, with_upcoming
from .translate import SUBSCRIPTION_EXPAND, subscription_view

# A trial's create also expands the setup intent of a card saved for later (3-D Secure).
TRIAL_EXPAND = [*SUBSCRIPTION_EXPAND, "pending_setup_intent"]


def trial_params(trial_days: int) -> dict[str, Any]:
    """Return the create parameters of a trial of `trial_days`."""
    return {
        "trial_period_days": trial_days,
        "trial_settings": {"end_behavior": {"missing_payment_method": "cancel"}},
        "expand": TRIAL_EXPAND,
    }


def change_during_trial(
    client: stripe.StripeClient, subscription: Any, new_plan: PlanLike, idempotency_key: str
) -> PlanChange:
    """Swap plans during a trial: `trial_end` kept, nothing billed, a pending cancel cleared.

    No invoice is made, so no `payment_behavior` is needed and `cancel_at_period_end` goes
    in the same call.
    """
    params: dict[str, Any] = {
        "items": [{"id": item(subscription)["id"], "price": new_plan.id}],
        "proration_behavior": "none",
        "trial_end": int(subscription["trial_end"]),
        "cancel_at_period_end": False,
        "expand": SUBSCRIPTION_EXPAND,
    }
    with translate_errors():
        updated = client.v1.subscriptions.update(
            subscription["id"], params=params, options={"idempotency_key": idempotency_key}
        )
    return PlanChange(with_upcoming(client, subscription_view(updated)), 0, 0)


def preview_during_trial(
    client: stripe.StripeClient, subscription: Any, new_plan: PlanLike
) -> ChangePreview:
    """What a swap during a trial bills: nothing now; the new plan's first invoice at its end."""
    with translate_errors():
        preview = client.v1.invoices.create_preview(
            params={
                "customer": get(subscription, "customer"),
                "subscription": subscription["id"],
                "subscription_details": {
                    "items": [{"id": item(subscription)["id"], "price": new_plan.id}],
                    "proration_behavior": "none",
                    "trial_end": int(subscription["trial_end"]),
                },
            }
        )
    upcoming = get(preview, "amount_due")
    return ChangePreview(
        0, 0, timestamp(period(subscription)[1]), None if upcoming is None else int(upcoming)
    )


def end_trial(
    client: stripe.StripeClient, subscription_id: str, idempotency_key: str
) -> ProviderSubscription:
    """End the trial now (`trial_end=now`) and pay the first invoice, or leave it pending."""
    with translate_errors():
        updated = client.v1.subscriptions.update(
            subscription_id,
            params={
                "trial_end": "now",
                "payment_behavior": "pending_if_incomplete",
                "expand": SUBSCRIPTION_EXPAND,
            },
            options={"idempotency_key": idempotency_key},
        )
    intent = latest_intent(updated)
    if get(updated, "pending_update") and intent is not None:
        if intent["status"] == "requires_payment_method":
            with translate_errors():
                void_invoice(client, expanded(get(updated, "latest_invoice"))["id"])
            raise PaymentDeclined(*decline(intent))
        return subscription_view(updated)
    return with_upcoming(client, subscription_view(updated))


def preview_create(
    client: stripe.StripeClient,
    customer_id: str | None,
    plan: PlanLike,
    coupon: CouponLike | None,
    trial_days: int,
) -> ChangePreview:
    """What a create now bills: the price less the coupon, less the customer's credit balance.

    The balance is Stripe's (`customer.balance`, negative is credit); a customer not made yet
    has none.
    """
    balance = 0
    if customer_id is not None:
        with translate_errors():
            customer = client.v1.customers.retrieve(customer_id)
        balance = int(get(customer, "balance", 0) or 0)
    return create_preview(plan, coupon, trial_days, balance, datetime.now(UTC))
