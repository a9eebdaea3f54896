"""Stripe's webhook events: verified with Stripe's library, tied to their subscription."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe

from ..base import (
    SIGNATURE_TOLERANCE_SECONDS,
    InvalidSignature,
    WebhookEvent,
    decode_event,
    parse_signature_header,
)
from .errors import translate_errors
from .objects import get, id_of, invoice_subscription


def parse_event(
    client: stripe.StripeClient, payload: bytes, signature_header: str | None, secret: str
) -> WebhookEvent:
    """Verify a webhook's signature with Stripe's library and decode it."""
    # Our parser first: Stripe's own raises IndexError or TypeError on some malformed headers,
    # so it only ever sees the header rebuilt from parts that passed.
    timestamp, signatures = parse_signature_header(signature_header)
    clean_header = ",".join([f"t={timestamp}", *(f"v1={value}" for value in signatures)])
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8", "replace"),
            clean_header,
            secret,
            SIGNATURE_TOLERANCE_SECONDS,
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(str(exc)) from None
    event = decode_event(payload)
    return WebhookEvent(
        id=event["id"],
        type=event["type"],
        subscription_id=_event_subscription(client, event["type"], event["data"]["object"]),
        payload=event,
    )


def _event_subscription(
    client: stripe.StripeClient, event_type: str, obj: Mapping[str, Any]
) -> str | None:
    """Work out the subscription an event is about, asking Stripe when the event can't tell."""
    if event_type.startswith("customer.subscription."):
        return obj.get("id")
    if event_type.startswith("invoice."):
        return invoice_subscription(obj)
    if event_type.startswith("charge.dispute."):
        # A dispute names its payment intent; the intent, its invoice (API 2025-02-24).
        intent_id = id_of(obj.get("payment_intent"))
        if not intent_id:
            return None
        with translate_errors():
            obj = {"invoice": get(client.v1.payment_intents.retrieve(intent_id), "invoice")}
    if event_type.startswith(("payment_intent.", "invoice_payment.", "charge.dispute.")):
        invoice_id = id_of(obj.get("invoice"))
        if not invoice_id:
            return None
        with translate_errors():
            invoice = client.v1.invoices.retrieve(invoice_id)
        return invoice_subscription(invoice)
    return None
