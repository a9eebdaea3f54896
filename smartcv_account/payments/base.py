"""The payment gateway interface and its value types (errors: `errors`; events: `signatures`).

Two implementations: `local` (the default; a model of Stripe test mode kept in this service's
database) and `stripe` (the real provider, the only package that imports `stripe`). Services talk
only to this interface; amounts are integer minor units and times aware UTC datetimes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .errors import (
    GatewayError,
    GatewayUnavailable,
    IdempotencyKeyReused,
    InvalidSignature,
    MalformedEvent,
    PaymentDeclined,
    UnknownPaymentMethod,
)
from .signatures import (
    MAX_EVENT_DEPTH,
    SIGNATURE_TOLERANCE_SECONDS,
    decode_event,
    parse_signature_header,
    sign_payload,
    verify_signature,
)

PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")

__all__ = [
    "MAX_EVENT_DEPTH",
    "SIGNATURE_TOLERANCE_SECONDS",
    "GatewayError",
    "GatewayUnavailable",
    "IdempotencyKeyReused",
    "InvalidSignature",
    "MalformedEvent",
    "PaymentDeclined",
    "UnknownPaymentMethod",
    "decode_event",
    "parse_signature_header",
    "sign_payload",
    "verify_signature",
]


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
class SavedCard:
    """A card saved for later off-session use (Stripe: a SetupIntent confirmed with it).

    `next_action` and the setup's `client_secret` are set while saving it waits for the
    customer (3-D Secure).
    """

    card: CardDetails
    client_secret: str | None = None
    next_action: dict[str, Any] | None = None


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
    # While the latest invoice is open: its payment's status (requires_action,
    # requires_payment_method, processing), what is still owed, and Stripe's hosted page.
    latest_payment_status: str | None = None
    latest_payment_cents: int | None = None
    hosted_invoice_url: str | None = None
    # An open dispute on one of its payments, as the local gateway reports it right after the
    # payment (Stripe reports disputes only by its `charge.dispute.created` event).
    dispute_id: str | None = None

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
    # What was refunded of its payment (the operator's `refund`, or the provider's dashboard).
    amount_refunded: int = 0


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified provider event, reduced to what the service acts on."""

    id: str
    type: str
    # The provider subscription the event is about, when the gateway could tell.
    subscription_id: str | None
    payload: dict[str, Any]


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
    def list_cards(self, customer_id: str) -> tuple[list[CardDetails], str | None]:
        """Return the customer's cards and the id of the default one (None without one)."""

    @abstractmethod
    def save_card(
        self, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> SavedCard:
        """Save a card for later off-session use with a SetupIntent (raises PaymentDeclined)."""

    @abstractmethod
    def set_default_card(self, customer_id: str, card_id: str, idempotency_key: str) -> None:
        """Make one of the customer's cards the one invoices (renewals) charge."""

    @abstractmethod
    def remove_card(self, customer_id: str, card_id: str) -> None:
        """Detach one of the customer's cards."""

    @abstractmethod
    def create_subscription(
        self,
        customer_id: str,
        plan: PlanLike,
        payment_method: CardDetails | None,
        coupon: CouponLike | None,
        idempotency_key: str,
        user_public_id: str | None = None,
        trial_days: int = 0,
    ) -> ProviderSubscription:
        """Subscribe the customer and charge the first invoice (raises PaymentDeclined).

        `user_public_id` goes into the subscription's `metadata.user_id`, as it does on the
        customer, so a subscription with no row here can be traced to its user. With
        `trial_days` it starts TRIALING and charges nothing: the first invoice (coupon applied)
        is charged at the trial's end, and a trial without a card then ends canceled (Stripe's
        `trial_settings.end_behavior.missing_payment_method=cancel`). A card that must be
        authenticated to be saved leaves `next_action` and the setup's `client_secret` set.
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
    def preview_create(
        self,
        customer_id: str | None,
        plan: PlanLike,
        coupon: CouponLike | None,
        trial_days: int,
    ) -> ChangePreview:
        """Return what creating the subscription now would bill now and next (the customer's
        credit balance applied; None for a customer not made yet)."""

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

        During a trial the swap keeps `trial_end` and bills nothing.
        """

    @abstractmethod
    def end_trial(self, subscription_id: str, idempotency_key: str) -> ProviderSubscription:
        """End a trial now and charge the first invoice on-session (Stripe: `trial_end=now`).

        As a plan change with `pending_if_incomplete`: a decline changes nothing (raises
        PaymentDeclined); a payment that needs authentication leaves the trial running with
        `pending_plan_id` (the current plan) and `next_action` set until it is paid or lapses.
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
    def refund_invoice(
        self, invoice_id: str, amount_cents: int | None, reason: str | None, idempotency_key: str
    ) -> int:
        """Refund all (None) or part of a paid invoice's payment; return its total refunded.

        Raises GatewayError for an invoice that is not paid, or an amount over what is left.
        """

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
