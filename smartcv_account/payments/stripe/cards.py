"""The customer's cards through Stripe: listed, saved with a SetupIntent, made default, detached.

Saving uses a SetupIntent confirmed with the card for off-session use, as Stripe recommends over
a bare `payment_methods.attach` (the issuer sees the card authorised for later charges, so
renewals meet fewer declines and authentication requests).
"""

from __future__ import annotations

import stripe

from ..base import CardDetails, PaymentDeclined, SavedCard
from .errors import translate_errors
from .objects import as_dict, expanded, get, id_of
from .translate import card


def list_cards(
    client: stripe.StripeClient, customer_id: str
) -> tuple[list[CardDetails], str | None]:
    """Return the customer's cards and the id of the default one for invoices."""
    with translate_errors():
        methods = client.v1.payment_methods.list(
            params={"customer": customer_id, "type": "card", "limit": 100}
        )
        customer = client.v1.customers.retrieve(customer_id)
    default = id_of(get(get(customer, "invoice_settings"), "default_payment_method"))
    return [card(method) for method in methods["data"]], default


def save_card(
    client: stripe.StripeClient, customer_id: str, payment_method_id: str, idempotency_key: str
) -> SavedCard:
    """Confirm a SetupIntent with the card for off-session use; it may wait for 3-D Secure."""
    with translate_errors(payment_method=True):
        setup = client.v1.setup_intents.create(
            params={
                "customer": customer_id,
                "payment_method": payment_method_id,
                "payment_method_types": ["card"],
                "usage": "off_session",
                "confirm": True,
                "expand": ["payment_method"],
            },
            options={"idempotency_key": idempotency_key},
        )
    status = setup["status"]
    if status == "requires_payment_method":
        error = get(setup, "last_setup_error") or {}
        raise PaymentDeclined(
            get(error, "decline_code") or get(error, "code") or "card_declined",
            get(error, "message") or "The card was declined.",
        )
    saved = card(expanded(setup["payment_method"]))
    if status == "requires_action":
        action = get(setup, "next_action")
        return SavedCard(saved, setup["client_secret"], as_dict(action) if action else None)
    return SavedCard(saved)


def set_default_card(
    client: stripe.StripeClient, customer_id: str, card_id: str, idempotency_key: str
) -> None:
    """Make the card the default the customer's invoices (renewals) charge."""
    with translate_errors():
        client.v1.customers.update(
            customer_id,
            params={"invoice_settings": {"default_payment_method": card_id}},
            options={"idempotency_key": idempotency_key},
        )


def remove_card(client: stripe.StripeClient, customer_id: str, card_id: str) -> None:
    """Detach the card from the customer."""
    with translate_errors(payment_method=True):
        client.v1.payment_methods.detach(card_id)
