"""The payment gateway interface, its value types and its errors.

Two implementations: `local` (the default; a model of Stripe test mode kept in this service's
database) and `stripe` (the real provider, the only module that imports `stripe`). Services talk
only to this interface; amounts are integer minor units and times aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")
SIGNATURE_TOLERANCE_SECONDS = 300


class PlanLike(Protocol):
    """What a gateway needs to know of a plan (models.Plan satisfies it)."""

    id: str
    name: str
    price_cents: int | None
    currency: str
    interval: str


class CouponLike(Protocol):
    """What a gateway needs to know of a coupon (models.Coupon satisfies it)."""

    code: str
    percent_off: int
    duration: str


@dataclass(frozen=True, slots=True)
class CardDetails:
    """A payment method as the API shows it; card numbers never reach this service."""

    payment_method_id: str
    type: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, slots=True)
class ProviderSubscription:
    """The provider's view of a subscription, in this service's vocabulary."""

    id: str
    customer_id: str
    plan_id: str
    # ACTIVE, TRIALING, PAST_DUE, INCOMPLETE or CANCELED.
    status: str
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    trial_end: datetime | None = None
    payment_method: CardDetails | None = None
    latest_invoice_id: str | None = None
    # Amount of the latest invoice (after discounts), minor units.
    latest_invoice_amount_cents: int | None = None
    # The latest invoice's payment intent secret (for Stripe.js); `next_action` is set only
    # while that payment waits for the customer (3-D Secure).
    client_secret: str | None = None
    next_action: dict[str, Any] | None = None

    @property
    def requires_action(self) -> bool:
        """Tell whether the customer must authenticate the latest payment."""
        return self.next_action is not None


@dataclass(frozen=True, slots=True)
class PlanChange:
    """The result of a plan swap: the subscription after it and the amount billed now."""

    subscription: ProviderSubscription
    proration_cents: int


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified provider event, reduced to what the service acts on."""

    id: str
    type: str
    # The provider subscription the event is about, when the gateway could tell.
    subscription_id: str | None
    payload: dict[str, Any]


class GatewayError(Exception):
    """Base class of gateway failures."""


class PaymentDeclined(GatewayError):
    """The card was declined (insufficient funds, generic decline, ...)."""

    def __init__(self, decline_code: str, message: str = "The card was declined.") -> None:
        super().__init__(message)
        self.decline_code = decline_code
        self.message = message


class UnknownPaymentMethod(GatewayError):
    """The payment method id does not exist at the provider."""


class InvalidSignature(GatewayError):
    """A webhook's signature is missing, malformed, stale or wrong."""


class GatewayUnavailable(GatewayError):
    """The provider could not be reached or answered with a server error."""


class PaymentGateway(ABC):
    """What the billing service needs from a payment provider."""

    name: str

    @abstractmethod
    def ensure_customer(self, user_public_id: str, email: str, customer_id: str | None) -> str:
        """Return the provider customer of this user, creating it when `customer_id` is None."""

    @abstractmethod
    def attach_payment_method(self, customer_id: str, payment_method_id: str) -> CardDetails:
        """Attach a payment method to the customer and make it the default one."""

    @abstractmethod
    def create_subscription(
        self,
        customer_id: str,
        plan: PlanLike,
        payment_method: CardDetails,
        coupon: CouponLike | None,
        idempotency_key: str,
    ) -> ProviderSubscription:
        """Subscribe the customer and charge the first invoice (raises PaymentDeclined)."""

    @abstractmethod
    def retrieve_subscription(self, subscription_id: str) -> ProviderSubscription:
        """Read the subscription's current state from the provider."""

    @abstractmethod
    def preview_proration(
        self, subscription_id: str, new_plan: PlanLike, proration_behavior: str
    ) -> int:
        """Return what swapping to `new_plan` now would bill now (negative: a credit)."""

    @abstractmethod
    def change_plan(
        self,
        subscription_id: str,
        new_plan: PlanLike,
        proration_behavior: str,
        idempotency_key: str,
    ) -> PlanChange:
        """Swap the plan now, prorating as asked; clears a pending cancel."""

    @abstractmethod
    def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> ProviderSubscription:
        """Schedule (True) or withdraw (False) cancellation at the end of the period."""

    @abstractmethod
    def cancel_now(self, subscription_id: str) -> ProviderSubscription:
        """End the subscription immediately (used to abandon a failed create)."""

    @abstractmethod
    def forget_customer(self, customer_id: str, user_public_id: str) -> None:
        """Remove the customer's email and name (account deletion); its invoices stay.

        `user_public_id` replaces the user id the customer was tagged with.
        """

    @abstractmethod
    def update_payment_method(
        self, subscription_id: str, customer_id: str, payment_method_id: str
    ) -> ProviderSubscription:
        """Attach a new payment method and make it the subscription's default."""

    @abstractmethod
    def advance(self, subscription_id: str) -> ProviderSubscription:
        """Bring a subscription up to now: renew or end it when its period is over.

        The local gateway does the provider's work here (charge the renewal, apply a pending
        cancel); the Stripe gateway only re-reads, since Stripe runs its own clock.
        """

    @abstractmethod
    def parse_event(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        """Verify a webhook's signature and decode it (raises InvalidSignature)."""

    @abstractmethod
    def sync_catalogue(self, plans: list[PlanLike], coupons: list[CouponLike]) -> None:
        """Create or update the provider's products, plans and coupons."""


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return a `Stripe-Signature` header value for `payload` (Stripe's v1 scheme)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(payload: bytes, header: str | None, secret: str) -> dict[str, Any]:
    """Check a `Stripe-Signature` header as Stripe's libraries do and return the JSON payload."""
    if not header:
        raise InvalidSignature("missing Stripe-Signature header")
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    timestamps = [value for key, value in parts if key.strip() == "t"]
    signatures = [value for key, value in parts if key.strip() == "v1"]
    if not timestamps or not signatures or not timestamps[0].isdigit():
        raise InvalidSignature("malformed Stripe-Signature header")
    timestamp = int(timestamps[0])
    expected = sign_payload(payload, secret, timestamp).split("v1=", 1)[1]
    # Bytes: compare_digest refuses non-ASCII str, and a crafted header would then be a 500.
    expected_bytes = expected.encode()
    if not any(hmac.compare_digest(expected_bytes, c.encode()) for c in signatures):
        raise InvalidSignature("signature does not match")
    if abs(time.time() - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise InvalidSignature("signature timestamp outside the tolerance")
    try:
        event = json.loads(payload)
    except ValueError:
        raise InvalidSignature("payload is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise InvalidSignature("payload is not an event")
    return event
