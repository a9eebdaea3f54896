"""The local gateway: a model of Stripe test mode that needs no account and no network.

It answers Stripe's documented test payment methods the way Stripe test mode does, keeps the
provider's books (customers, subscriptions, invoices, payment intents) in this service's
database, prorates by the second from `clock.now()`, renews and ends subscriptions when
`advance` runs, and signs its events with the webhook secret exactly as Stripe does.

LocalGateway, here, is the PaymentGateway its modules make up: `models` (the provider's
tables), `customers` (customers and their cards), `cards` (Stripe's test cards and what a
charge does), `periods`, `invoices`, `prorations`, `plan_changes`, `subscriptions`, `trials`,
`renewals` (the provider's clock and its dunning), `events` (made, signed and read back),
`idempotency` and `views` (a subscription as ProviderSubscription).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import (
    CardDetails,
    ChangePreview,
    CouponLike,
    InvoiceSummary,
    PaymentGateway,
    PlanChange,
    PlanLike,
    ProviderSubscription,
    SavedCard,
    WebhookEvent,
    sign_payload,
)
from . import customers, events, invoices, plan_changes, renewals, subscriptions, trials


class LocalGateway(PaymentGateway):
    """Stripe test mode, modelled in-process with its books in the service's database.

    Like every gateway it only adds and flushes rows in the caller's session: the service owns
    the transaction and decides when the provider's books are committed with its own.
    """

    name = "local"

    def __init__(self, webhook_secret: str) -> None:
        self.webhook_secret = webhook_secret

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LocalGateway:
        """Build the gateway; it signs and checks events with STRIPE_WEBHOOK_SECRET."""
        return cls(config["STRIPE_WEBHOOK_SECRET"])

    # The interface

    def ensure_customer(self, user_public_id: str, email: str, customer_id: str | None) -> str:
        """Return the user's local customer, creating it on first use."""
        return customers.ensure_customer(user_public_id, email, customer_id)

    def attach_payment_method(self, customer_id: str, payment_method_id: str) -> CardDetails:
        """Attach one of Stripe's test payment methods; declining cards fail here as in Stripe."""
        return customers.attach_payment_method(customer_id, payment_method_id)

    def list_cards(self, customer_id: str) -> tuple[list[CardDetails], str | None]:
        """Return the customer's cards and the default one's id."""
        return customers.list_cards(customer_id)

    def save_card(
        self, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> SavedCard:
        """Save a test card as a confirmed SetupIntent would (3-D Secure cards wait for it)."""
        return customers.save_card(customer_id, payment_method_id)

    def set_default_card(self, customer_id: str, card_id: str, idempotency_key: str) -> None:
        """Make the card the one the customer's invoices charge."""
        customers.set_default_card(customer_id, card_id)

    def remove_card(self, customer_id: str, card_id: str) -> None:
        """Detach the card."""
        customers.remove_card(customer_id, card_id)

    def customer_user_id(self, customer_id: str) -> str | None:
        """Return the user a local customer was made for."""
        return customers.customer_user_id(customer_id)

    def forget_customer(self, customer_id: str, user_public_id: str) -> None:
        """Blank the customer's email and re-tag it; its invoices stay (no commit)."""
        customers.forget_customer(customer_id, user_public_id)

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
        """Start a subscription and pay its first invoice on-session, or start a trial."""
        return subscriptions.create_subscription(
            customer_id, plan, payment_method, coupon, idempotency_key, trial_days
        )

    def retrieve_subscription(self, subscription_id: str) -> ProviderSubscription:
        """Read a local subscription (an unknown id is a GatewayError, as Stripe's 404 is)."""
        return subscriptions.retrieve_subscription(subscription_id)

    def preview_change(
        self, subscription_id: str, new_plan: PlanLike, proration_behavior: str
    ) -> ChangePreview:
        """Return what a swap to `new_plan` now would create, bill now and bill next."""
        return plan_changes.preview_change(subscription_id, new_plan, proration_behavior)

    def preview_create(
        self,
        customer_id: str | None,
        plan: PlanLike,
        coupon: CouponLike | None,
        trial_days: int,
    ) -> ChangePreview:
        """Return what a create now would bill, the customer's credit balance applied."""
        return customers.preview_create(customer_id, plan, coupon, trial_days)

    def change_plan(
        self,
        subscription_id: str,
        new_plan: PlanLike,
        proration_behavior: str,
        idempotency_key: str,
    ) -> PlanChange:
        """Swap plans as Stripe does with `payment_behavior=pending_if_incomplete`."""
        return plan_changes.change_plan(
            subscription_id, new_plan, proration_behavior, idempotency_key
        )

    def end_trial(self, subscription_id: str, idempotency_key: str) -> ProviderSubscription:
        """End the trial now and charge the first invoice on-session."""
        return trials.end_trial(subscription_id, idempotency_key)

    def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool, idempotency_key: str | None = None
    ) -> ProviderSubscription:
        """Schedule or withdraw the cancellation at period end."""
        return subscriptions.set_cancel_at_period_end(subscription_id, cancel, idempotency_key)

    def cancel_now(
        self, subscription_id: str, idempotency_key: str | None = None
    ) -> ProviderSubscription:
        """End a subscription at once; an incomplete one's open invoice is voided, as in Stripe."""
        return subscriptions.cancel_now(subscription_id, idempotency_key)

    def update_payment_method(
        self,
        subscription_id: str,
        customer_id: str,
        payment_method_id: str,
        idempotency_key: str | None = None,
    ) -> ProviderSubscription:
        """Make a new card the customer's and the subscription's default (no payment here)."""
        return subscriptions.update_payment_method(
            subscription_id, customer_id, payment_method_id, idempotency_key
        )

    def pay_open_invoice(self, subscription_id: str, idempotency_key: str) -> ProviderSubscription:
        """Pay the latest open invoice with the default card now, as Stripe's `invoices.pay`."""
        return subscriptions.pay_open_invoice(subscription_id, idempotency_key)

    def list_invoices(self, customer_id: str) -> list[InvoiceSummary]:
        """Return the customer's finalized invoices, newest first, numbered in order."""
        return invoices.list_invoices(customer_id)

    def refund_invoice(
        self, invoice_id: str, amount_cents: int | None, reason: str | None, idempotency_key: str
    ) -> int:
        """Refund all or part of a paid invoice; return the total refunded."""
        return invoices.refund_invoice(invoice_id, amount_cents, reason, idempotency_key)

    def advance(self, subscription_id: str) -> ProviderSubscription:
        """Run the provider's clock: renew each period that has ended, or end the subscription."""
        return renewals.advance(subscription_id)

    def parse_event(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        """Verify the signature as Stripe's libraries do and find the event's subscription."""
        return events.parse_event(payload, signature_header, self.webhook_secret)

    def sync_catalogue(self, plans: list[PlanLike], coupons: list[CouponLike]) -> None:
        """Nothing to do: the local provider reads plans and coupons from our tables."""

    # Test mode: what Stripe's dashboard, Stripe.js and its webhook sender do

    def authenticate_payment(self, invoice_or_intent_id: str, succeed: bool = True) -> bytes:
        """Complete (or fail) a payment waiting for 3-D Secure and return the event to deliver."""
        return events.authenticate_payment(invoice_or_intent_id, succeed)

    def event_body(self, event_type: str, obj: dict[str, Any]) -> bytes:
        """Return a Stripe-format event body for `obj`."""
        return events.event_body(event_type, obj)

    def signed_event(self, body: bytes) -> str:
        """Return the Stripe-Signature header for an event body."""
        return sign_payload(body, self.webhook_secret)
