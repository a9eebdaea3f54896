"""What each Stripe subscription status means to this service: the one map both gateways use.

The local gateway keeps its subscriptions in Stripe's vocabulary and the Stripe gateway reads
Stripe's, so both translate through `service_status`.
"""

from __future__ import annotations

from .base import GatewayError

# Every status Stripe documents for a subscription, and what it means here.
SERVICE_STATUS = {
    "active": "ACTIVE",
    "trialing": "TRIALING",
    "past_due": "PAST_DUE",
    # A trial that ended without a payment method: the subscription lives on but grants
    # nothing, which is what PAST_DUE means here.
    "paused": "PAST_DUE",
    "incomplete": "INCOMPLETE",
    "canceled": "CANCELED",
    "incomplete_expired": "CANCELED",
    # Stripe keeps an `unpaid` subscription (its invoices stay open) until it is canceled: it
    # holds the slot and grants nothing, as PAST_DUE does here.
    "unpaid": "PAST_DUE",
}


def service_status(stripe_status: str) -> str:
    """Return the service's status (ACTIVE, PAST_DUE, …) for a Stripe subscription status."""
    status = SERVICE_STATUS.get(stripe_status)
    if status is None:
        raise GatewayError(f"unknown Stripe subscription status {stripe_status!r}")
    return status
