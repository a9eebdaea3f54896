"""Stripe customers and the cards attached to them."""

from __future__ import annotations

import stripe

from ..base import CardDetails
from .errors import translate_errors
from .keys import stable_key
from .objects import get
from .translate import card


def ensure_customer(
    client: stripe.StripeClient, user_public_id: str, email: str, customer_id: str | None
) -> str:
    """Return the user's Stripe customer, creating it (once) when `customer_id` is None."""
    if customer_id:
        return customer_id
    with translate_errors():
        customer = client.v1.customers.create(
            params={"email": email, "metadata": {"user_id": user_public_id}},
            # A retried or concurrent first subscribe must not make a second customer.
            options={"idempotency_key": stable_key("customer", user_public_id)},
        )
    return customer["id"]


def forget_customer(client: stripe.StripeClient, customer_id: str, user_public_id: str) -> None:
    """Unset the customer's email and name (Stripe unsets a field sent empty)."""
    with translate_errors():
        client.v1.customers.update(
            customer_id,
            params={"email": "", "name": "", "metadata": {"user_id": user_public_id}},
            options={"idempotency_key": stable_key("forget", customer_id, user_public_id)},
        )


def customer_user_id(client: stripe.StripeClient, customer_id: str) -> str | None:
    """Return the user public id in the Stripe customer's metadata."""
    with translate_errors():
        customer = client.v1.customers.retrieve(customer_id)
    return get(get(customer, "metadata"), "user_id")


def attach_payment_method(
    client: stripe.StripeClient,
    customer_id: str,
    payment_method_id: str,
    intent_key: str | None = None,
) -> CardDetails:
    """Attach the payment method and make it the customer's default for invoices.

    The default's idempotency key is derived from the caller's intent (`intent_key`, which
    carries the subscription's version) when there is one: a key derived from the card alone
    would make Stripe replay the first answer when the default goes A -> B -> A within a day,
    leaving B the default while the service shows A.
    """
    with translate_errors(payment_method=True):
        payment_method = client.v1.payment_methods.attach(
            payment_method_id,
            params={"customer": customer_id},
            options={"idempotency_key": stable_key("attach", customer_id, payment_method_id)},
        )
    with translate_errors():
        # Subscriptions bill the customer's default; we never set one per subscription
        # (see subscriptions.create_subscription), so this is the single place the card is
        # chosen.
        client.v1.customers.update(
            customer_id,
            params={"invoice_settings": {"default_payment_method": payment_method["id"]}},
            options={
                "idempotency_key": f"{intent_key}:default"
                if intent_key
                else stable_key("default-card", customer_id, payment_method["id"])
            },
        )
    return card(payment_method)
