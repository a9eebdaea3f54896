"""Events from the payment provider."""

from flask import Blueprint, request

from ..openapi import endpoint
from ..schemas.subscription import webhook_receipt_schema
from ..services import billing

bp = Blueprint("webhooks", __name__)


@bp.post("/stripe")
@endpoint(webhook_receipt_schema, errors=("INVALID_SIGNATURE",), security=None)
def stripe_webhook():
    """Verify a signed provider event and bring the subscription in step with it.

    Called by Stripe only, signed with the webhook secret (`Stripe-Signature`); an invalid
    signature is INVALID_SIGNATURE and changes nothing. Each event id is processed once (a
    repeat answers `duplicate: true`); subscription, invoice and payment-method events update
    the local subscription.
    """
    processed = billing.handle_webhook(
        request.get_data(cache=False), request.headers.get("Stripe-Signature")
    )
    return {"received": True, "duplicate": not processed}
