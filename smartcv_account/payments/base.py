"""The payment gateway interface, its value types and its errors.

Two implementations: `local` (the default; a model of Stripe test mode kept in this service's
database) and `stripe` (the real provider, the only package that imports `stripe`). Services talk
only to this interface; amounts are integer minor units and times aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")
SIGNATURE_TOLERANCE_SECONDS = 300
# A Unix time in ASCII digits: `str.isdigit` also accepts `²` and `int()` refuses 4,301+ digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Stripe's events nest a few levels; anything much deeper is not one of them.
MAX_EVENT_DEPTH = 32
# Fields that hold an object's id in an event: a string (or null), never an object.
ID_FIELDS = frozenset(
    {"id", "customer", "subscription", "invoice", "payment_intent", "payment_method"}
    | {"default_payment_method"}
)


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
    # A plan swap waiting for its payment (Stripe's `pending_update`) and when it lapses.
    pending_plan_id: str | None = None
    pending_expires_at: datetime | None = None
    # What the next regular invoice will charge (credit balance, discounts and pending
    # prorations applied); None when no next invoice is due (a cancel is pending, it ended).
    next_invoice_amount_cents: int | None = None
    # When a failed invoice will be charged again (the local gateway's dunning; Stripe runs
    # its own retries and reports nothing here).
    next_payment_attempt: datetime | None = None

    @property
    def requires_action(self) -> bool:
        """Tell whether the customer must authenticate the latest payment."""
        return self.next_action is not None


@dataclass(frozen=True, slots=True)
class PlanChange:
    """The result of a plan swap: the subscription after it, what it created and billed now.

    `proration_cents` is the signed amount the change creates (prorations, and a new period's
    price when the interval changes); `amount_due_cents` what was asked of the card now, after
    the customer's credit balance (0 when a credit covers it or the proration waits for the
    next invoice).
    """

    subscription: ProviderSubscription
    proration_cents: int
    amount_due_cents: int = 0


@dataclass(frozen=True, slots=True)
class ChangePreview:
    """What a plan swap made now would bill: the same numbers `change_plan` then reports."""

    proration_cents: int
    amount_due_cents: int
    next_billing_date: datetime | None
    next_billing_cents: int | None


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    """An invoice as GET /api/account/invoices shows it (Stripe's meanings of the amounts)."""

    id: str
    number: str | None
    # paid, open, void or uncollectible (drafts are not shown)
    status: str
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    discount: int
    currency: str
    created_at: datetime
    period_start: datetime | None
    period_end: datetime | None
    plan_id: str | None
    hosted_invoice_url: str | None


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


class MalformedEvent(GatewayError):
    """A correctly signed webhook whose payload is not a Stripe event of the expected shape."""


class GatewayUnavailable(GatewayError):
    """The provider could not be reached or answered with a server error."""


class IdempotencyKeyReused(GatewayError):
    """An idempotency key came back with other parameters than its first use (Stripe: 400)."""


class PaymentGateway(ABC):
    """What the billing service needs from a payment provider."""

    name: str

    @classmethod
    @abstractmethod
    def from_config(cls, config: Mapping[str, Any]) -> PaymentGateway:
        """Build the gateway from the app's configuration."""

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
        user_public_id: str | None = None,
    ) -> ProviderSubscription:
        """Subscribe the customer and charge the first invoice (raises PaymentDeclined).

        `user_public_id` goes into the subscription's `metadata.user_id`, as it does on the
        customer, so a subscription with no row here can be traced to its user.
        """

    @abstractmethod
    def retrieve_subscription(self, subscription_id: str) -> ProviderSubscription:
        """Read the subscription's current state from the provider."""

    @abstractmethod
    def customer_user_id(self, customer_id: str) -> str | None:
        """Return the user public id kept in the customer's `metadata.user_id`, if any."""

    @abstractmethod
    def preview_change(
        self, subscription_id: str, new_plan: PlanLike, proration_behavior: str
    ) -> ChangePreview:
        """Return what swapping to `new_plan` now would create, bill now and bill next."""

    @abstractmethod
    def change_plan(
        self,
        subscription_id: str,
        new_plan: PlanLike,
        proration_behavior: str,
        idempotency_key: str,
    ) -> PlanChange:
        """Swap the plan, prorating as asked; clears a pending cancel.

        As Stripe's `payment_behavior=pending_if_incomplete`: a declined payment changes nothing
        (raises PaymentDeclined); a payment that needs authentication leaves the plan as it is
        and returns the subscription with `pending_plan_id` and `next_action` set.
        """

    @abstractmethod
    def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool, idempotency_key: str | None = None
    ) -> ProviderSubscription:
        """Schedule (True) or withdraw (False) cancellation at the end of the period."""

    @abstractmethod
    def cancel_now(
        self, subscription_id: str, idempotency_key: str | None = None
    ) -> ProviderSubscription:
        """End the subscription now; an INCOMPLETE one's open invoice is voided."""

    @abstractmethod
    def forget_customer(self, customer_id: str, user_public_id: str) -> None:
        """Remove the customer's email and name (account deletion); its invoices stay.

        `user_public_id` replaces the user id the customer was tagged with.
        """

    @abstractmethod
    def update_payment_method(
        self,
        subscription_id: str,
        customer_id: str,
        payment_method_id: str,
        idempotency_key: str | None = None,
    ) -> ProviderSubscription:
        """Attach a new payment method and make it the subscription's default."""

    @abstractmethod
    def pay_open_invoice(self, subscription_id: str, idempotency_key: str) -> ProviderSubscription:
        """Pay the subscription's open invoice with its default card now (raises PaymentDeclined).

        Nothing to pay returns the subscription as it is.
        """

    @abstractmethod
    def list_invoices(self, customer_id: str) -> list[InvoiceSummary]:
        """Return the customer's finalized invoices, newest first."""

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


def parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    """Split a `Stripe-Signature` header into its timestamp and v1 signatures.

    Anything but `t=<ASCII digits>` and at least one `v1=` is InvalidSignature, so no header a
    client can send reaches `int()` or a digest comparison in a shape they would fail on.
    """
    if not header:
        raise InvalidSignature("missing Stripe-Signature header")
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    timestamps = [value for key, value in parts if key.strip() == "t"]
    signatures = [value for key, value in parts if key.strip() == "v1" and value.isascii()]
    if len(timestamps) != 1 or not signatures or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise InvalidSignature("malformed Stripe-Signature header")
    return int(timestamps[0]), signatures


def verify_signature(payload: bytes, header: str | None, secret: str) -> dict[str, Any]:
    """Check a `Stripe-Signature` header as Stripe's libraries do and return the decoded event."""
    timestamp, signatures = parse_signature_header(header)
    expected = sign_payload(payload, secret, timestamp).split("v1=", 1)[1].encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures):
        raise InvalidSignature("signature does not match")
    if abs(time.time() - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise InvalidSignature("signature timestamp outside the tolerance")
    return decode_event(payload)


def decode_event(payload: bytes) -> dict[str, Any]:
    """Decode a verified event body, refusing any shape the handlers could trip over.

    The signature proves who sent it, not that it is well formed: the body must be UTF-8 JSON
    without lone surrogates, at most MAX_EVENT_DEPTH deep, with a string `id` and `type`, an
    object under `data.object`, and strings (or null) wherever Stripe puts an id.
    """
    try:
        event = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        raise MalformedEvent("payload is not JSON") from None
    _check_tree(event)
    if not isinstance(event, dict):
        raise MalformedEvent("payload is not an event")
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255:
        raise MalformedEvent("event id is not a string of 1 to 255 characters")
    if not isinstance(event_type, str) or not 0 < len(event_type) <= 100:
        raise MalformedEvent("event type is not a string of 1 to 100 characters")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("event has no data.object")
    return event


def _check_tree(value: Any) -> None:
    """Refuse deep nesting, text that is not valid Unicode, and an object where an id belongs."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_EVENT_DEPTH:
            raise MalformedEvent("event is nested too deeply")
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                if key in ID_FIELDS and child is not None and not isinstance(child, str):
                    raise MalformedEvent(f"{key} is not an id")
                pending.append((child, depth + 1))


def _check_text(text: str) -> None:
    """Refuse a string holding a lone surrogate (valid JSON, but no database can store it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedEvent("event text is not valid Unicode") from None
