"""Stripe subscriptions: starting, reading, cancelling, their card and their open invoice."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import stripe

from ..base import (
    CardDetails,
    CouponLike,
    GatewayError,
    GatewayUnavailable,
    InvoiceSummary,
    PaymentDeclined,
    PlanLike,
    ProviderSubscription,
)
from .customers import attach_payment_method
from .errors import translate_errors
from .keys import key_options, stable_key
from .objects import decline, expanded, get, id_of, latest_intent
from .translate import SUBSCRIPTION_EXPAND, invoice_summary, subscription_view

log = logging.getLogger(__name__)

# Stripe's error code when `invoices.pay` needs the customer to authenticate the payment.
REQUIRES_ACTION = "invoice_payment_intent_requires_action"


def create_subscription(
    client: stripe.StripeClient,
    customer_id: str,
    plan: PlanLike,
    payment_method: CardDetails | None,
    coupon: CouponLike | None,
    idempotency_key: str,
    user_public_id: str | None,
    trial: dict[str, Any] | None = None,
) -> ProviderSubscription:
    """Subscribe the customer and charge the first invoice (raises PaymentDeclined), or start
    a trial with the `trial` parameters (trials.trial_params)."""
    params: dict[str, Any] = {
        "customer": customer_id,
        # Plans, not prices: Stripe treats a plan id as a price id, and localstripe has no
        # Prices API. The card is the customer's default (set by attach_payment_method):
        # `default_payment_method` on the subscription is refused by localstripe and would
        # only duplicate it.
        "items": [{"plan": plan.id}],
        "expand": SUBSCRIPTION_EXPAND,
    }
    if coupon is not None:
        params["discounts"] = [{"coupon": coupon.code}]
    if user_public_id is not None:
        params["metadata"] = {"user_id": user_public_id}
    if trial is not None:
        params.update(trial)
    with translate_errors():
        subscription = client.v1.subscriptions.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    intent = latest_intent(subscription)
    if intent is not None and intent["status"] == "requires_payment_method":
        _abandon(client, subscription["id"])
        raise PaymentDeclined(*decline(intent))
    return subscription_view(subscription, payment_method)


def retrieve_subscription(
    client: stripe.StripeClient, subscription_id: str
) -> ProviderSubscription:
    """Read the subscription, its latest payment and its card from Stripe."""
    with translate_errors():
        subscription = client.v1.subscriptions.retrieve(
            subscription_id, params={"expand": SUBSCRIPTION_EXPAND}
        )
    return with_upcoming(client, subscription_view(subscription))


def advance(client: stripe.StripeClient, subscription_id: str) -> ProviderSubscription:
    """Re-read the subscription (Stripe runs its own clock); void a lapsed update's invoice.

    A pending update not paid by its `expires_at` is dropped by Stripe, but its invoice stays
    open and payable: voided here, so paying it later cannot apply or charge anything.
    """
    with translate_errors():
        subscription = client.v1.subscriptions.retrieve(
            subscription_id, params={"expand": SUBSCRIPTION_EXPAND}
        )
    invoice = expanded(get(subscription, "latest_invoice"))
    pending = get(subscription, "pending_update")
    lapsed = not pending or int(get(pending, "expires_at", 0)) <= int(time.time())
    if (
        invoice is not None
        and get(invoice, "status") == "open"
        and get(invoice, "billing_reason") == "subscription_update"
        and lapsed
    ):
        with translate_errors():
            void_invoice(client, invoice["id"])
        return retrieve_subscription(client, subscription_id)
    return with_upcoming(client, subscription_view(subscription))


def with_upcoming(
    client: stripe.StripeClient, provider: ProviderSubscription
) -> ProviderSubscription:
    """Add what the next invoice will charge, from Stripe's invoice preview.

    `invoices.create_preview` of the subscription as it is gives the upcoming invoice with
    the credit balance, discounts and pending prorations applied. A preview Stripe refuses
    (an ended subscription has no upcoming invoice) leaves the amount unknown.
    """
    if provider.status not in ("ACTIVE", "TRIALING", "PAST_DUE") or (provider.cancel_at_period_end):
        return provider
    try:
        with translate_errors():
            preview = client.v1.invoices.create_preview(
                params={"customer": provider.customer_id, "subscription": provider.id}
            )
    except GatewayUnavailable:
        raise
    except GatewayError:
        log.warning("no upcoming invoice preview for %s", provider.id)
        return provider
    amount = get(preview, "amount_due")
    if amount is None:
        return provider
    return replace(provider, next_invoice_amount_cents=int(amount))


def set_cancel_at_period_end(
    client: stripe.StripeClient, subscription_id: str, cancel: bool, idempotency_key: str | None
) -> ProviderSubscription:
    """Schedule (True) or withdraw (False) cancellation at the end of the period."""
    with translate_errors():
        subscription = client.v1.subscriptions.update(
            subscription_id,
            params={"cancel_at_period_end": cancel, "expand": SUBSCRIPTION_EXPAND},
            options=key_options(idempotency_key),
        )
    return with_upcoming(client, subscription_view(subscription))


def cancel_now(
    client: stripe.StripeClient, subscription_id: str, idempotency_key: str | None
) -> ProviderSubscription:
    """End the subscription now; cancelling an already ended one just reads it.

    An incomplete subscription's open first invoice is voided: canceling the subscription
    leaves it open, and paying it later would charge for nothing.
    """
    try:
        with translate_errors():
            subscription = client.v1.subscriptions.cancel(
                subscription_id,
                params={"expand": SUBSCRIPTION_EXPAND},
                options=key_options(idempotency_key),
            )
            invoice = _latest_invoice(client, subscription)
            if invoice is not None and invoice["status"] == "open":
                void_invoice(client, invoice["id"])
    except GatewayUnavailable:
        raise
    except GatewayError:
        # Stripe refuses to cancel a subscription twice; a retry must still succeed.
        current = retrieve_subscription(client, subscription_id)
        if current.status != "CANCELED":
            raise
        return current
    return subscription_view(subscription)


def void_invoice(client: stripe.StripeClient, invoice_id: str) -> None:
    """Void an open invoice (inside the caller's translate_errors)."""
    client.v1.invoices.void_invoice(
        invoice_id, options={"idempotency_key": stable_key("void", invoice_id)}
    )


def update_payment_method(
    client: stripe.StripeClient,
    subscription_id: str,
    customer_id: str,
    payment_method_id: str,
    idempotency_key: str | None,
) -> ProviderSubscription:
    """Attach the new card as the customer's default, which the subscription bills."""
    card = attach_payment_method(client, customer_id, payment_method_id, idempotency_key)
    with translate_errors():
        subscription = client.v1.subscriptions.retrieve(
            subscription_id, params={"expand": SUBSCRIPTION_EXPAND}
        )
        # A per-subscription card (set outside this service, e.g. in the dashboard) would
        # override the customer's default: replace it too. We never set one ourselves.
        if get(subscription, "default_payment_method"):
            subscription = client.v1.subscriptions.update(
                subscription_id,
                params={
                    "default_payment_method": card.payment_method_id,
                    "expand": SUBSCRIPTION_EXPAND,
                },
                options=key_options(idempotency_key),
            )
    return subscription_view(subscription, card)


def pay_open_invoice(
    client: stripe.StripeClient, subscription_id: str, idempotency_key: str
) -> ProviderSubscription:
    """Pay the subscription's open invoice now with the customer's default card.

    Stripe's `invoices.pay`: a decline is a card error (PaymentDeclined); a card that needs
    3-D Secure is the error `invoice_payment_intent_requires_action`, which leaves the intent
    waiting: the subscription is returned with its next action, never a decline.
    """
    with translate_errors():
        subscription = client.v1.subscriptions.retrieve(
            subscription_id, params={"expand": SUBSCRIPTION_EXPAND}
        )
    with translate_errors():
        invoice = _latest_invoice(client, subscription)
    if invoice is not None and invoice["status"] == "open":
        with translate_errors():
            try:
                client.v1.invoices.pay(
                    invoice["id"],
                    params={"off_session": False},
                    options={"idempotency_key": idempotency_key},
                )
            except stripe.StripeError as exc:
                # The card needs the customer (3-D Secure): not a decline. The intent now
                # waits with its next action, which the subscription read below shows.
                if exc.code != REQUIRES_ACTION:
                    raise
    return retrieve_subscription(client, subscription_id)


def list_invoices(client: stripe.StripeClient, customer_id: str) -> list[InvoiceSummary]:
    """Return the customer's finalized invoices, newest first (Stripe lists them so).

    Each invoice's charge is expanded for its `amount_refunded`: a refund made here or in
    Stripe's dashboard (`charge.refunded`) shows the same way.
    """
    with translate_errors():
        invoices = client.v1.invoices.list(
            params={"customer": customer_id, "limit": 100, "expand": ["data.charge"]}
        )
    shown = [invoice for invoice in invoices["data"] if invoice["status"] != "draft"]
    return [invoice_summary(invoice) for invoice in shown]


def refund_invoice(
    client: stripe.StripeClient,
    invoice_id: str,
    amount_cents: int | None,
    reason: str | None,
    idempotency_key: str,
) -> int:
    """Refund all or part of the invoice's payment (`refunds.create` on its payment intent)."""
    with translate_errors():
        invoice = client.v1.invoices.retrieve(invoice_id)
    intent = id_of(get(invoice, "payment_intent"))
    if get(invoice, "status") != "paid" or intent is None:
        raise GatewayError(f"invoice {invoice_id} has no payment to refund")
    params: dict[str, Any] = {"payment_intent": intent}
    if amount_cents is not None:
        params["amount"] = amount_cents
    if reason is not None:
        params["reason"] = reason
    charge_id = id_of(get(invoice, "charge"))
    with translate_errors():
        before = int(get(client.v1.charges.retrieve(charge_id), "amount_refunded", 0))
        # The refund so far is part of the intent: a retry finds the first refund, a later
        # refund of the same amount is one of its own.
        key = f"{idempotency_key}:after:{before}"
        client.v1.refunds.create(params=params, options={"idempotency_key": key})
        charge = client.v1.charges.retrieve(charge_id)
    return int(get(charge, "amount_refunded", 0))


def _latest_invoice(client: stripe.StripeClient, subscription: Any) -> Any | None:
    """Return the subscription's latest invoice, retrieving it when it was not expanded."""
    latest = get(subscription, "latest_invoice")
    if latest is None or not isinstance(latest, str):
        return latest
    return client.v1.invoices.retrieve(latest)


def _abandon(client: stripe.StripeClient, subscription_id: str) -> None:
    """Cancel a subscription whose first payment failed, so nothing is left half-made."""
    try:
        cancel_now(client, subscription_id, None)
    except GatewayError:
        # The decline is what the caller must hear; Stripe expires an unpaid incomplete
        # subscription by itself after 23 hours.
        log.warning("could not cancel incomplete subscription %s", subscription_id)
