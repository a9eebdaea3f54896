"""The Stripe gateway: the only package of the service that imports `stripe`.

It speaks to Stripe through one `stripe.StripeClient` pinned to `STRIPE_API_VERSION`. Its API
base is configurable so the test suite runs it against localstripe on loopback; what localstripe
lacks is covered by request-shape tests and by an opt-in suite against Stripe test mode.

StripeGateway, here, holds the client and is the PaymentGateway its modules make up, each a
set of functions taking that client: `customers` (customers and cards), `subscriptions`,
`plan_changes`, `webhooks`, `catalogue`; `translate` turns Stripe's objects into the gateway's
types with the readers of `objects`; `errors` turns Stripe's exceptions into the gateway's;
`keys` makes idempotency keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe

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
)
from . import cards, catalogue, customers, plan_changes, subscriptions, trials, webhooks
from .http_client import BudgetedRequestsClient

# Pinned so a library upgrade never changes response shapes under us. 2025-02-24.acacia is the
# last version where an invoice still has `payment_intent` (expanded on create to read 3-D Secure
# and declines) and `subscription`; that is also the shape localstripe answers in, so CI and
# production read the same fields. Moving to basil or later means reading
# `latest_invoice.payments`/`confirmation_secret` instead: do it deliberately, with the live suite.
STRIPE_API_VERSION = "2025-02-24.acacia"

# Stripe's default is 80 s; one call waits at most this, and a web request's calls and retries
# together at most PROVIDER_TIME_BUDGET_SECONDS (payments/budget.py), so the caller gets 503
# SERVICE_UNAVAILABLE rather than a worker killed at gunicorn's 30 s.
HTTP_TIMEOUT_SECONDS = 20

__all__ = ["HTTP_TIMEOUT_SECONDS", "STRIPE_API_VERSION", "StripeGateway"]


class StripeGateway(PaymentGateway):
    """PaymentGateway backed by Stripe (or a Stripe-compatible server at `api_base`)."""

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        api_base: str | None,
        webhook_secret: str,
        max_network_retries: int | None = None,
    ) -> None:
        """Build the client; `api_base` points it at a Stripe-compatible server (tests)."""
        self._webhook_secret = webhook_secret
        self._api_key = api_key
        # Our own HTTP client so `close()` can release its pooled connections; it holds each
        # call to the request's time budget (http_client.py).
        self._http = BudgetedRequestsClient(timeout=HTTP_TIMEOUT_SECONDS)
        if max_network_retries is None:
            # Against localstripe every 4xx would otherwise be retried after a one-second wait;
            # against Stripe, retries (with the library's idempotency keys) ride out blips.
            max_network_retries = 0 if api_base else 2
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            stripe_version=STRIPE_API_VERSION,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StripeGateway:
        """Build the gateway from STRIPE_SECRET_KEY, STRIPE_API_BASE, STRIPE_WEBHOOK_SECRET and
        STRIPE_MAX_NETWORK_RETRIES."""
        retries = config.get("STRIPE_MAX_NETWORK_RETRIES")
        return cls(
            api_key=config["STRIPE_SECRET_KEY"],
            api_base=config["STRIPE_API_BASE"] or None,
            webhook_secret=config["STRIPE_WEBHOOK_SECRET"],
            max_network_retries=int(retries) if retries not in (None, "") else None,
        )

    def close(self) -> None:
        """Release pooled HTTP connections (tests; the app keeps one gateway for its life)."""
        self._http.close()

    def ensure_customer(self, user_public_id: str, email: str, customer_id: str | None) -> str:
        """Return the user's Stripe customer, creating it (once) when `customer_id` is None."""
        return customers.ensure_customer(self._client, user_public_id, email, customer_id)

    def forget_customer(self, customer_id: str, user_public_id: str) -> None:
        """Unset the customer's email and name (Stripe unsets a field sent empty)."""
        customers.forget_customer(self._client, customer_id, user_public_id)

    def attach_payment_method(self, customer_id: str, payment_method_id: str) -> CardDetails:
        """Attach the payment method and make it the customer's default for invoices."""
        return customers.attach_payment_method(self._client, customer_id, payment_method_id)

    def list_cards(self, customer_id: str) -> tuple[list[CardDetails], str | None]:
        """Return the customer's cards and the default one's id."""
        return cards.list_cards(self._client, customer_id)

    def save_card(
        self, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> SavedCard:
        """Save the card with a confirmed SetupIntent (off-session use)."""
        return cards.save_card(self._client, customer_id, payment_method_id, idempotency_key)

    def set_default_card(self, customer_id: str, card_id: str, idempotency_key: str) -> None:
        """Make the card the customer's default for invoices."""
        cards.set_default_card(self._client, customer_id, card_id, idempotency_key)

    def remove_card(self, customer_id: str, card_id: str) -> None:
        """Detach the card."""
        cards.remove_card(self._client, customer_id, card_id)

    def customer_user_id(self, customer_id: str) -> str | None:
        """Return the user public id in the Stripe customer's metadata."""
        return customers.customer_user_id(self._client, customer_id)

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
        """Subscribe the customer and charge the first invoice (raises PaymentDeclined)."""
        return subscriptions.create_subscription(
            self._client,
            customer_id,
            plan,
            payment_method,
            coupon,
            idempotency_key,
            user_public_id,
            trials.trial_params(trial_days) if trial_days > 0 else None,
        )

    def end_trial(self, subscription_id: str, idempotency_key: str) -> ProviderSubscription:
        """End the trial now (`trial_end=now`, `pending_if_incomplete`)."""
        return trials.end_trial(self._client, subscription_id, idempotency_key)

    def preview_create(
        self,
        customer_id: str | None,
        plan: PlanLike,
        coupon: CouponLike | None,
        trial_days: int,
    ) -> ChangePreview:
        """Return what a create now would bill, Stripe's customer balance applied."""
        return trials.preview_create(self._client, customer_id, plan, coupon, trial_days)

    def retrieve_subscription(self, subscription_id: str) -> ProviderSubscription:
        """Read the subscription, its latest payment and its card from Stripe."""
        return subscriptions.retrieve_subscription(self._client, subscription_id)

    def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool, idempotency_key: str | None = None
    ) -> ProviderSubscription:
        """Schedule (True) or withdraw (False) cancellation at the end of the period."""
        return subscriptions.set_cancel_at_period_end(
            self._client, subscription_id, cancel, idempotency_key
        )

    def cancel_now(
        self, subscription_id: str, idempotency_key: str | None = None
    ) -> ProviderSubscription:
        """End the subscription now; cancelling an already ended one just reads it."""
        return subscriptions.cancel_now(self._client, subscription_id, idempotency_key)

    def update_payment_method(
        self,
        subscription_id: str,
        customer_id: str,
        payment_method_id: str,
        idempotency_key: str | None = None,
    ) -> ProviderSubscription:
        """Attach the new card as the customer's default, which the subscription bills."""
        return subscriptions.update_payment_method(
            self._client, subscription_id, customer_id, payment_method_id, idempotency_key
        )

    def pay_open_invoice(self, subscription_id: str, idempotency_key: str) -> ProviderSubscription:
        """Pay the subscription's open invoice now with the customer's default card."""
        return subscriptions.pay_open_invoice(self._client, subscription_id, idempotency_key)

    def list_invoices(self, customer_id: str) -> list[InvoiceSummary]:
        """Return the customer's finalized invoices, newest first (Stripe lists them so)."""
        return subscriptions.list_invoices(self._client, customer_id)

    def refund_invoice(
        self, invoice_id: str, amount_cents: int | None, reason: str | None, idempotency_key: str
    ) -> int:
        """Refund all or part of the invoice's payment; return its charge's total refunded."""
        return subscriptions.refund_invoice(
            self._client, invoice_id, amount_cents, reason, idempotency_key
        )

    def advance(self, subscription_id: str) -> ProviderSubscription:
        """Re-read the subscription (Stripe renews and ends subscriptions on its own clock) and
        void the invoice of a plan change that lapsed unpaid."""
        return subscriptions.advance(self._client, subscription_id)

    def preview_change(
        self, subscription_id: str, new_plan: PlanLike, proration_behavior: str
    ) -> ChangePreview:
        """Return what swapping to `new_plan` now would create, bill now and bill next."""
        return plan_changes.preview_change(
            self._client, subscription_id, new_plan, proration_behavior
        )

    def change_plan(
        self,
        subscription_id: str,
        new_plan: PlanLike,
        proration_behavior: str,
        idempotency_key: str,
    ) -> PlanChange:
        """Swap the plan (`payment_behavior=pending_if_incomplete`); clear a pending cancel."""
        return plan_changes.change_plan(
            self._client, subscription_id, new_plan, proration_behavior, idempotency_key
        )

    def parse_event(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        """Verify a webhook's signature with Stripe's library and decode it."""
        return webhooks.parse_event(self._client, payload, signature_header, self._webhook_secret)

    def sync_catalogue(self, plans: list[PlanLike], coupons: list[CouponLike]) -> None:
        """Create what is missing of products, plans and coupons; change nothing that matches."""
        catalogue.sync_catalogue(self._client, plans, coupons)
