"""Events of the local provider: made and signed as Stripe's are, and read back when posted.

`authenticate_payment` is the customer finishing 3-D Secure in Stripe.js; the event it
returns is what Stripe would post to the webhook endpoint.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from ... import clock
from ...extensions import db
from ..base import UnknownPaymentMethod, WebhookEvent, verify_signature
from .cards import mark_paid
from .models import LocalInvoice, LocalSubscription, new_id
from .subscriptions import invoice_paid
from .views import get_subscription


def authenticate_payment(invoice_or_intent_id: str, succeed: bool) -> bytes:
    """Complete (or fail) a payment waiting for 3-D Secure and return the event to deliver.

    The event body is `invoice.paid` or `invoice.payment_failed`; the gateway's `signed_event`
    signs it.
    """
    invoice = db.session.scalar(
        sa.select(LocalInvoice).where(
            sa.or_(
                LocalInvoice.id == invoice_or_intent_id,
                LocalInvoice.payment_intent_id == invoice_or_intent_id,
            )
        )
    )
    if invoice is None:
        setup = db.session.scalar(
            sa.select(LocalSubscription).where(
                LocalSubscription.setup_intent_id == invoice_or_intent_id,
                LocalSubscription.setup_status == "requires_action",
            )
        )
        if setup is not None:
            return _authenticate_setup(setup, succeed)
    if invoice is None or invoice.status != "open" or invoice.payment_status != "requires_action":
        raise UnknownPaymentMethod(f"no payment awaits authentication: {invoice_or_intent_id}")
    subscription = get_subscription(invoice.subscription_id)
    if succeed:
        mark_paid(invoice)
        invoice_paid(subscription, invoice)
        event_type = "invoice.paid"
    else:
        invoice.payment_status = "requires_payment_method"
        event_type = "invoice.payment_failed"
    db.session.flush()
    return event_body(event_type, _invoice_object(invoice))


def _authenticate_setup(subscription: LocalSubscription, succeed: bool) -> bytes:
    """Finish (or fail) the 3-D Secure of a card being saved; return the SetupIntent's event."""
    subscription.setup_status = "succeeded" if succeed else "requires_payment_method"
    db.session.flush()
    setup_intent = {
        "id": subscription.setup_intent_id,
        "object": "setup_intent",
        "customer": subscription.customer_id,
        "payment_method": subscription.default_payment_method_id,
        "status": subscription.setup_status,
    }
    kind = "setup_intent.succeeded" if succeed else "setup_intent.setup_failed"
    return event_body(kind, setup_intent)


def event_body(event_type: str, obj: dict[str, Any]) -> bytes:
    """Return a Stripe-format event body for `obj`."""
    event = {
        "id": new_id("evt"),
        "object": "event",
        "type": event_type,
        "created": int(clock.now().timestamp()),
        "data": {"object": obj},
    }
    return json.dumps(event).encode("utf-8")


def parse_event(payload: bytes, signature_header: str | None, secret: str) -> WebhookEvent:
    """Verify the signature as Stripe's libraries do and find the event's subscription."""
    event = verify_signature(payload, signature_header, secret)
    obj = (event.get("data") or {}).get("object") or {}
    subscription_id = None
    if isinstance(obj, dict):
        kind = obj.get("object")
        if kind == "subscription":
            subscription_id = obj.get("id")
        elif kind == "invoice":
            subscription_id = obj.get("subscription")
        elif kind == "setup_intent":
            subscription_id = db.session.scalar(
                sa.select(LocalSubscription.id).where(
                    LocalSubscription.setup_intent_id == obj.get("id")
                )
            )
        elif kind == "dispute":
            invoice = db.session.scalar(
                sa.select(LocalInvoice).where(
                    LocalInvoice.payment_intent_id == obj.get("payment_intent")
                )
            )
            subscription_id = invoice.subscription_id if invoice else None
        elif kind == "payment_intent":
            invoice = db.session.scalar(
                sa.select(LocalInvoice).where(LocalInvoice.payment_intent_id == obj.get("id"))
            )
            subscription_id = invoice.subscription_id if invoice else None
    return WebhookEvent(
        id=event["id"],
        type=str(event.get("type", "")),
        subscription_id=subscription_id if isinstance(subscription_id, str) else None,
        payload=event,
    )


def _invoice_object(invoice: LocalInvoice) -> dict[str, Any]:
    """Render an invoice in Stripe's JSON shape (the fields the webhook handler reads)."""
    return {
        "id": invoice.id,
        "object": "invoice",
        "subscription": invoice.subscription_id,
        "customer": invoice.customer_id,
        "status": invoice.status,
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "currency": invoice.currency.lower(),
        "billing_reason": invoice.billing_reason,
        "payment_intent": invoice.payment_intent_id,
    }
