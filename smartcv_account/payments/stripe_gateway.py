"""The Stripe gateway: the only module of the service that imports `stripe`.

It speaks to Stripe through one `stripe.StripeClient` pinned to `STRIPE_API_VERSION`. Its API
base is configurable so the test suite runs it against localstripe on loopback; what localstripe
lacks is covered by request-shape tests and by an opt-in suite against Stripe test mode.

Shapes that moved between Stripe API versions (subscription periods, an invoice's subscription,
a line's proration flag) are read from wherever they are, so the gateway keeps working when a
webhook endpoint sends events in another version than the one pinned here.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import stripe

from .base import (
    PRORATION_BEHAVIORS,
    SIGNATURE_TOLERANCE_SECONDS,
    CardDetails,
    ChangePreview,
    CouponLike,
    GatewayError,
    GatewayUnavailable,
    InvalidSignature,
    InvoiceSummary,
    PaymentDeclined,
    PaymentGateway,
    PlanChange,
    PlanLike,
    ProviderSubscription,
    UnknownPaymentMethod,
    WebhookEvent,
    decode_event,
    parse_signature_header,
)

log = logging.getLogger(__name__)

# Pinned so a library upgrade never changes response shapes under us. 2025-02-24.acacia is the
# last version where an invoice still has `payment_intent` (expanded on create to read 3-D Secure
# and declines) and `subscription`; that is also the shape localstripe answers in, so CI and
# production read the same fields. Moving to basil or later means reading
# `latest_invoice.payments`/`confirmation_secret` instead: do it deliberately, with the live suite.
STRIPE_API_VERSION = "2025-02-24.acacia"

# Stripe's default is 80 s; a web request waiting on Stripe should fail well before the worker's
# own timeout so the caller gets GATEWAY_UNAVAILABLE rather than a killed worker.
HTTP_TIMEOUT_SECONDS = 20

# What each Stripe subscription status means here. `paused` (a trial ended without a payment
# method) keeps the subscription alive but grants nothing, which is what PAST_DUE means to us.
STATUS_MAP = {
    "active": "ACTIVE",
    "trialing": "TRIALING",
    "past_due": "PAST_DUE",
    "paused": "PAST_DUE",
    "incomplete": "INCOMPLETE",
    "canceled": "CANCELED",
    "incomplete_expired": "CANCELED",
    # Stripe keeps an `unpaid` subscription (its invoices stay open) until it is canceled: it
    # holds the slot and grants nothing, as PAST_DUE does here.
    "unpaid": "PAST_DUE",
}

# Expansions that let one call return everything ProviderSubscription needs: the first payment's
# intent (declines, 3-D Secure) and the customer's default card (the subscription bills it).
SUBSCRIPTION_EXPAND = [
    "latest_invoice.payment_intent",
    "customer.invoice_settings.default_payment_method",
]


class StripeGateway(PaymentGateway):
    """PaymentGateway backed by Stripe (or a Stripe-compatible server at `api_base`)."""

    name = "stripe"

    def __init__(self, api_key: str, api_base: str | None, webhook_secret: str) -> None:
        """Build the client; `api_base` points it at a Stripe-compatible server (tests)."""
        self._webhook_secret = webhook_secret
        self._api_key = api_key
        # Our own HTTP client so `close()` can release its pooled connections.
        self._http = stripe.RequestsClient(timeout=HTTP_TIMEOUT_SECONDS)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            stripe_version=STRIPE_API_VERSION,
            # Against localstripe every 4xx would otherwise be retried after a one-second wait;
            # against Stripe, retries (with the library's idempotency keys) ride out blips.
            max_network_retries=0 if api_base else 2,
            http_client=self._http,
        )

    def close(self) -> None:
        """Release pooled HTTP connections (tests; the app keeps one gateway for its life)."""
        self._http.close()

    # Customers and payment methods

    def ensure_customer(self, user_public_id: str, email: str, customer_id: str | None) -> str:
        """Return the user's Stripe customer, creating it (once) when `customer_id` is None."""
        if customer_id:
            return customer_id
        with _translate_errors():
            customer = self._client.v1.customers.create(
                params={"email": email, "metadata": {"user_id": user_public_id}},
                # A retried or concurrent first subscribe must not make a second customer.
                options={"idempotency_key": _key("customer", user_public_id)},
            )
        return customer["id"]

    def forget_customer(self, customer_id: str, user_public_id: str) -> None:
        """Unset the customer's email and name (Stripe unsets a field sent empty)."""
        with _translate_errors():
            self._client.v1.customers.update(
                customer_id,
                params={"email": "", "name": "", "metadata": {"user_id": user_public_id}},
                options={"idempotency_key": _key("forget", customer_id, user_public_id)},
            )

    def attach_payment_method(self, customer_id: str, payment_method_id: str) -> CardDetails:
        """Attach the payment method and make it the customer's default for invoices."""
        with _translate_errors(payment_method=True):
            payment_method = self._client.v1.payment_methods.attach(
                payment_method_id,
                params={"customer": customer_id},
                options={"idempotency_key": _key("attach", customer_id, payment_method_id)},
            )
        with _translate_errors():
            # Subscriptions bill the customer's default; we never set one per subscription
            # (see create_subscription), so this is the single place the card is chosen.
            self._client.v1.customers.update(
                customer_id,
                params={"invoice_settings": {"default_payment_method": payment_method["id"]}},
                options={
                    "idempotency_key": _key("default-card", customer_id, payment_method["id"])
                },
            )
        return _card(payment_method)

    # Subscriptions

    def create_subscription(
        self,
        customer_id: str,
        plan: PlanLike,
        payment_method: CardDetails,
        coupon: CouponLike | None,
        idempotency_key: str,
        user_public_id: str | None = None,
    ) -> ProviderSubscription:
        """Subscribe the customer and charge the first invoice (raises PaymentDeclined)."""
        params: dict[str, Any] = {
            "customer": customer_id,
            # Plans, not prices: Stripe treats a plan id as a price id, and localstripe has no
            # Prices API. The card is the customer's default (set by attach_payment_method):
            # `default_payment_method` on the subscription is refused by localstripe and would
            # only duplicate it.
            "items": [{"plan": plan.id}],
            "expand": SUBSCRIPTION_EXPAND,
        }
        if coupon is not None:
            params["discounts"] = [{"coupon": coupon.code}]
        if user_public_id is not None:
            params["metadata"] = {"user_id": user_public_id}
        with _translate_errors():
            subscription = self._client.v1.subscriptions.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        intent = _latest_intent(subscription)
        if intent is not None and intent["status"] == "requires_payment_method":
            error = _get(intent, "last_payment_error") or {}
            decline_code = _get(error, "decline_code") or _get(error, "code") or "card_declined"
            self._abandon(subscription["id"])
            raise PaymentDeclined(decline_code, _get(error, "message") or "The card was declined.")
        return _subscription(subscription, payment_method)

    def customer_user_id(self, customer_id: str) -> str | None:
        """Return the user public id in the Stripe customer's metadata."""
        with _translate_errors():
            customer = self._client.v1.customers.retrieve(customer_id)
        return _get(_get(customer, "metadata"), "user_id")

    def retrieve_subscription(self, subscription_id: str) -> ProviderSubscription:
        """Read the subscription, its latest payment and its card from Stripe."""
        with _translate_errors():
            subscription = self._client.v1.subscriptions.retrieve(
                subscription_id, params={"expand": SUBSCRIPTION_EXPAND}
            )
        return self._with_upcoming(_subscription(subscription))

    def _with_upcoming(self, provider: ProviderSubscription) -> ProviderSubscription:
        """Add what the next invoice will charge, from Stripe's invoice preview.

        `invoices.create_preview` of the subscription as it is gives the upcoming invoice with
        the credit balance, discounts and pending prorations applied. A preview Stripe refuses
        (an ended subscription has no upcoming invoice) leaves the amount unknown.
        """
        if provider.status not in ("ACTIVE", "TRIALING", "PAST_DUE") or (
            provider.cancel_at_period_end
        ):
            return provider
        try:
            with _translate_errors():
                preview = self._client.v1.invoices.create_preview(
                    params={"customer": provider.customer_id, "subscription": provider.id}
                )
        except GatewayUnavailable:
            raise
        except GatewayError:
            log.warning("no upcoming invoice preview for %s", provider.id)
            return provider
        amount = _get(preview, "amount_due")
        if amount is None:
            return provider
        return replace(provider, next_invoice_amount_cents=int(amount))

    def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool, idempotency_key: str | None = None
    ) -> ProviderSubscription:
        """Schedule (True) or withdraw (False) cancellation at the end of the period."""
        with _translate_errors():
            subscription = self._client.v1.subscriptions.update(
                subscription_id,
                params={"cancel_at_period_end": cancel, "expand": SUBSCRIPTION_EXPAND},
                options=_options(idempotency_key),
            )
        return self._with_upcoming(_subscription(subscription))

    def cancel_now(
        self, subscription_id: str, idempotency_key: str | None = None
    ) -> ProviderSubscription:
        """End the subscription now; cancelling an already ended one just reads it.

        An incomplete subscription's open first invoice is voided: canceling the subscription
        leaves it open, and paying it later would charge for nothing.
        """
        try:
            with _translate_errors():
                subscription = self._client.v1.subscriptions.cancel(
                    subscription_id,
                    params={"expand": SUBSCRIPTION_EXPAND},
                    options=_options(idempotency_key),
                )
                invoice = self._latest_invoice(subscription)
                if invoice is not None and invoice["status"] == "open":
                    self._client.v1.invoices.void_invoice(
                        invoice["id"], options={"idempotency_key": _key("void", invoice["id"])}
                    )
        except GatewayUnavailable:
            raise
        except GatewayError:
            # Stripe refuses to cancel a subscription twice; a retry must still succeed.
            current = self.retrieve_subscription(subscription_id)
            if current.status != "CANCELED":
                raise
            return current
        return _subscription(subscription)

    def update_payment_method(
        self,
        subscription_id: str,
        customer_id: str,
        payment_method_id: str,
        idempotency_key: str | None = None,
    ) -> ProviderSubscription:
        """Attach the new card as the customer's default, which the subscription bills."""
        card = self.attach_payment_method(customer_id, payment_method_id)
        with _translate_errors():
            subscription = self._client.v1.subscriptions.retrieve(
                subscription_id, params={"expand": SUBSCRIPTION_EXPAND}
            )
            # A per-subscription card (set outside this service, e.g. in the dashboard) would
            # override the customer's default: replace it too. We never set one ourselves.
            if _get(subscription, "default_payment_method"):
                subscription = self._client.v1.subscriptions.update(
                    subscription_id,
                    params={
                        "default_payment_method": card.payment_method_id,
                        "expand": SUBSCRIPTION_EXPAND,
                    },
                    options=_options(idempotency_key),
                )
        return _subscription(subscription, card)

    def _latest_invoice(self, subscription: Any) -> Any | None:
        """Return the subscription's latest invoice, retrieving it when it was not expanded."""
        latest = _get(subscription, "latest_invoice")
        if latest is None or not isinstance(latest, str):
            return latest
        return self._client.v1.invoices.retrieve(latest)

    def pay_open_invoice(self, subscription_id: str, idempotency_key: str) -> ProviderSubscription:
        """Pay the subscription's open invoice now with the customer's default card.

        Stripe's `invoices.pay`: a decline is a card error (PaymentDeclined); a card that needs
        3-D Secure leaves the intent waiting (the subscription shows the next action).
        """
        with _translate_errors():
            subscription = self._client.v1.subscriptions.retrieve(
                subscription_id, params={"expand": SUBSCRIPTION_EXPAND}
            )
        with _translate_errors():
            invoice = self._latest_invoice(subscription)
        if invoice is not None and invoice["status"] == "open":
            with _translate_errors():
                self._client.v1.invoices.pay(
                    invoice["id"],
                    params={"off_session": False},
                    options={"idempotency_key": idempotency_key},
                )
        return self.retrieve_subscription(subscription_id)

    def list_invoices(self, customer_id: str) -> list[InvoiceSummary]:
        """Return the customer's finalized invoices, newest first (Stripe lists them so)."""
        with _translate_errors():
            invoices = self._client.v1.invoices.list(params={"customer": customer_id, "limit": 100})
        shown = [invoice for invoice in invoices["data"] if invoice["status"] != "draft"]
        return [_invoice_summary(invoice) for invoice in shown]

    def advance(self, subscription_id: str) -> ProviderSubscription:
        """Re-read the subscription: Stripe renews and ends subscriptions on its own clock."""
        return self.retrieve_subscription(subscription_id)

    # Plan changes

    def preview_change(
        self, subscription_id: str, new_plan: PlanLike, proration_behavior: str
    ) -> ChangePreview:
        """Return what swapping to `new_plan` now would create, bill now and bill next."""
        _check_behavior(proration_behavior)
        with _translate_errors():
            subscription = self._client.v1.subscriptions.retrieve(subscription_id)
        return self._preview(subscription, new_plan, proration_behavior, int(time.time()))

    def change_plan(
        self,
        subscription_id: str,
        new_plan: PlanLike,
        proration_behavior: str,
        idempotency_key: str,
    ) -> PlanChange:
        """Swap the plan with `payment_behavior=pending_if_incomplete`, then clear a pending cancel.

        Stripe applies such a swap only once its invoice is paid: a decline leaves a pending
        update with an open invoice, which is voided here (voiding discards the update), so a
        declined swap changes nothing; a payment needing 3-D Secure stays pending.
        `cancel_at_period_end` is not a pending-update parameter: it is cleared by a second call
        once the swap applied.
        """
        _check_behavior(proration_behavior)
        with _translate_errors():
            subscription = self._client.v1.subscriptions.retrieve(subscription_id)
        # Stripe's clock, not the service's (tests freeze that one); the same second for the
        # preview and the swap makes the amount we report the amount Stripe bills.
        proration_date = int(time.time())
        proration_cents = self._preview(
            subscription, new_plan, proration_behavior, proration_date
        ).proration_cents
        params: dict[str, Any] = {
            "items": [{"id": _item(subscription)["id"], "plan": new_plan.id}],
            "proration_behavior": proration_behavior,
            "proration_date": proration_date,
            "payment_behavior": "pending_if_incomplete",
            "expand": SUBSCRIPTION_EXPAND,
        }
        with _translate_errors():
            updated = self._client.v1.subscriptions.update(
                subscription_id, params=params, options={"idempotency_key": idempotency_key}
            )
        invoice = _expanded(_get(updated, "latest_invoice"))
        intent = _latest_intent(updated)
        if _get(updated, "pending_update") and intent is not None:
            if intent["status"] == "requires_payment_method":
                error = _get(intent, "last_payment_error") or {}
                with _translate_errors():
                    self._client.v1.invoices.void_invoice(
                        invoice["id"], options={"idempotency_key": _key("void", invoice["id"])}
                    )
                code = _get(error, "decline_code") or _get(error, "code") or "card_declined"
                raise PaymentDeclined(code, _get(error, "message") or "The card was declined.")
            return PlanChange(_subscription(updated), proration_cents, 0)
        if bool(_get(updated, "cancel_at_period_end", False)):
            with _translate_errors():
                updated = self._client.v1.subscriptions.update(
                    subscription_id,
                    params={"cancel_at_period_end": False, "expand": SUBSCRIPTION_EXPAND},
                    options={"idempotency_key": idempotency_key + ":keep"},
                )
        billed_now = (
            invoice is not None
            and _get(invoice, "billing_reason") == ("subscription_update")
            and _get(invoice, "created", 0) >= proration_date
        )
        amount_due = int(_get(invoice, "amount_paid", 0)) if billed_now else 0
        provider = self._with_upcoming(_subscription(updated))
        return PlanChange(provider, proration_cents, amount_due)

    def _preview(
        self,
        subscription: Any,
        new_plan: PlanLike,
        proration_behavior: str,
        proration_date: int,
    ) -> ChangePreview:
        """Work out a swap from Stripe's invoice preview of it: created, billed now, billed next.

        The amount created sums the prorations and a new period starting now. When Stripe
        invoices at once (a new interval, or `always_invoice`) that is billed now, less the
        credit balance, and the next invoice is the new plan's price less any credit left;
        otherwise nothing is billed now and the preview is the next invoice itself.
        """
        with _translate_errors():
            preview = self._client.v1.invoices.create_preview(
                params={
                    # Stripe infers the customer from the subscription; localstripe needs it.
                    "customer": _id(subscription["customer"]),
                    "subscription": subscription["id"],
                    "subscription_details": {
                        "items": [{"id": _item(subscription)["id"], "plan": new_plan.id}],
                        "proration_behavior": proration_behavior,
                        "proration_date": proration_date,
                    },
                }
            )
        period_end = _period(subscription)[1]
        new_period = _interval(subscription) != new_plan.interval
        total, next_end = 0, period_end
        for line in preview["lines"]["data"]:
            # A line of the next regular period (same interval) is billed then, not by this
            # change. A change of interval restarts the period now: its first period line is
            # billed now, next to the credit for the unused time (monthly -> yearly ~ 27000).
            starts_before_end = int(line["period"]["start"]) < period_end
            if _is_proration(line) or starts_before_end:
                total += int(line["amount"])
            if new_period and not _is_proration(line):
                next_end = int(line["period"]["end"])
        balance = int(_get(preview, "starting_balance", 0))
        if not new_period and proration_behavior != "always_invoice":
            if proration_behavior == "none":
                total = 0
            upcoming = _get(preview, "amount_due")
            return ChangePreview(
                total, 0, _timestamp(period_end), None if upcoming is None else int(upcoming)
            )
        left = min(0, total + balance)
        return ChangePreview(
            total,
            max(0, total + balance),
            _timestamp(next_end),
            max(0, (new_plan.price_cents or 0) + left),
        )

    def _abandon(self, subscription_id: str) -> None:
        """Cancel a subscription whose first payment failed, so nothing is left half-made."""
        try:
            self.cancel_now(subscription_id)
        except GatewayError:
            # The decline is what the caller must hear; Stripe expires an unpaid incomplete
            # subscription by itself after 23 hours.
            log.warning("could not cancel incomplete subscription %s", subscription_id)

    # Webhooks

    def parse_event(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        """Verify a webhook's signature with Stripe's library and decode it."""
        # Our parser first: Stripe's own raises IndexError or TypeError on some malformed headers,
        # so it only ever sees the header rebuilt from parts that passed.
        timestamp, signatures = parse_signature_header(signature_header)
        clean_header = ",".join([f"t={timestamp}", *(f"v1={value}" for value in signatures)])
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8", "replace"),
                clean_header,
                self._webhook_secret,
                SIGNATURE_TOLERANCE_SECONDS,
            )
        except stripe.SignatureVerificationError as exc:
            raise InvalidSignature(str(exc)) from None
        event = decode_event(payload)
        return WebhookEvent(
            id=event["id"],
            type=event["type"],
            subscription_id=self._event_subscription(event["type"], event["data"]["object"]),
            payload=event,
        )

    def _event_subscription(self, event_type: str, obj: Mapping[str, Any]) -> str | None:
        """Work out the subscription an event is about, asking Stripe when the event can't tell."""
        if event_type.startswith("customer.subscription."):
            return obj.get("id")
        if event_type.startswith("invoice."):
            return _invoice_subscription(obj)
        if event_type.startswith(("payment_intent.", "invoice_payment.")):
            invoice_id = _id(obj.get("invoice"))
            if not invoice_id:
                return None
            with _translate_errors():
                invoice = self._client.v1.invoices.retrieve(invoice_id)
            return _invoice_subscription(invoice)
        return None

    # Catalogue

    def sync_catalogue(self, plans: list[PlanLike], coupons: list[CouponLike]) -> None:
        """Create what is missing of products, plans and coupons; change nothing that matches."""
        with _translate_errors():
            for plan in plans:
                # Not sold through Stripe: the free plan, and contact-sales plans (no price).
                if not plan.price_cents:
                    continue
                self._sync_product(plan)
                self._sync_plan(plan)
            for coupon in coupons:
                self._sync_coupon(coupon)

    def _sync_product(self, plan: PlanLike) -> None:
        """Create the plan's product, or rename it when our name changed."""
        product_id = "prod_" + plan.id
        product = _retrieve_or_none(self._client.v1.products.retrieve, product_id)
        if product is None:
            self._client.v1.products.create(
                params={"id": product_id, "name": plan.name},
                options={"idempotency_key": _key("product", product_id, plan.name)},
            )
        elif product["name"] != plan.name:
            self._client.v1.products.update(product_id, params={"name": plan.name})

    def _sync_plan(self, plan: PlanLike) -> None:
        """Create the Stripe plan with our plan's id; refuse to drift from an existing one."""
        wanted = {
            "amount": plan.price_cents,
            "currency": plan.currency.lower(),
            "interval": plan.interval,
        }
        existing = _retrieve_or_none(self._client.v1.plans.retrieve, plan.id)
        if existing is None:
            self._client.v1.plans.create(
                params={
                    "id": plan.id,
                    "product": "prod_" + plan.id,
                    "nickname": plan.name,
                    **wanted,
                },
                options={"idempotency_key": _key("plan", plan.id, *map(str, wanted.values()))},
            )
            return
        found = {key: existing[key] for key in wanted}
        if found != wanted:
            # Stripe plans are immutable in price; silently billing the old amount would be
            # worse than stopping the seed: a new price needs a new plan id.
            raise GatewayError(f"Stripe plan {plan.id} is {found}, not {wanted}; use a new plan id")

    def _sync_coupon(self, coupon: CouponLike) -> None:
        """Create the coupon; refuse to drift from an existing one (coupons are immutable)."""
        existing = _retrieve_or_none(self._client.v1.coupons.retrieve, coupon.code)
        if existing is None:
            self._client.v1.coupons.create(
                params={
                    "id": coupon.code,
                    "percent_off": coupon.percent_off,
                    "duration": coupon.duration,
                },
                options={
                    "idempotency_key": _key(
                        "coupon", coupon.code, str(coupon.percent_off), coupon.duration
                    )
                },
            )
            return
        if float(existing["percent_off"] or 0) != coupon.percent_off or (
            existing["duration"] != coupon.duration
        ):
            raise GatewayError(f"Stripe coupon {coupon.code} differs from ours; use a new code")


# Helpers: error translation


@contextmanager
def _translate_errors(payment_method: bool = False) -> Iterator[None]:
    """Turn `stripe` exceptions into the gateway's, so services never see `stripe`.

    `payment_method=True` marks calls whose 404 or invalid-parameter answer means the payment
    method id itself is bad (the API shows that as a validation error on `paymentMethodId`).
    """
    try:
        yield
    except stripe.CardError as exc:
        body = _error_body(exc)
        code = body.get("decline_code") or body.get("code") or exc.code or "card_declined"
        raise PaymentDeclined(code, body.get("message") or "The card was declined.") from exc
    except stripe.InvalidRequestError as exc:
        missing = exc.code == "resource_missing" or exc.http_status == 404
        if payment_method and (missing or (exc.param or "").startswith("payment_method")):
            raise UnknownPaymentMethod(str(exc.user_message or exc)) from exc
        raise GatewayError(f"Stripe refused the request: {exc.user_message or exc}") from exc
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise GatewayUnavailable(f"Stripe is unreachable: {exc}") from exc
    except stripe.StripeError as exc:
        # APIError and anything else from Stripe's side (5xx, unreadable bodies).
        if exc.http_status is None or exc.http_status >= 500:
            raise GatewayUnavailable(f"Stripe failed: {exc}") from exc
        raise GatewayError(f"Stripe error: {exc}") from exc


def _error_body(exc: stripe.StripeError) -> dict[str, Any]:
    """Return the `error` object of a Stripe error response, or {}."""
    body = exc.json_body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return dict(body["error"])
    return {}


def _retrieve_or_none(retrieve: Callable[[str], Any], object_id: str) -> Any | None:
    """Retrieve an object by id, or None when Stripe has none with that id."""
    try:
        return retrieve(object_id)
    except stripe.InvalidRequestError as exc:
        if exc.code == "resource_missing" or exc.http_status == 404:
            return None
        raise


def _check_behavior(proration_behavior: str) -> None:
    """Refuse a proration behaviour Stripe doesn't know (schemas validate it before us)."""
    if proration_behavior not in PRORATION_BEHAVIORS:
        raise ValueError(f"unknown proration_behavior {proration_behavior!r}")


def _options(idempotency_key: str | None) -> dict[str, str] | None:
    """Return request options carrying the idempotency key, when there is one."""
    return {"idempotency_key": idempotency_key} if idempotency_key else None


def _key(kind: str, *parts: str) -> str:
    """Return a stable idempotency key for creating `kind` from `parts`.

    The parameters' digest is part of the key because Stripe rejects a reused key whose
    parameters differ (for 24 hours), which a corrected catalogue entry would otherwise hit.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
    return f"smartcv-{kind}-{parts[0]}-{digest}"


# Helpers: reading Stripe objects (StripeObject or plain dict; ids or expanded objects)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """Return obj[key] when present and not None; stripe 16 objects have no .get()."""
    if obj is None or key not in obj:
        return default
    value = obj[key]
    return default if value is None else value


def _id(value: Any) -> str | None:
    """Return the id of a field that is either an id or an expanded object."""
    if value is None or isinstance(value, str):
        return value
    return value["id"]


def _expanded(value: Any) -> Any | None:
    """Return an expanded object, or None when the field is only an id (or empty)."""
    return None if value is None or isinstance(value, str) else value


def _as_dict(value: Any) -> dict[str, Any]:
    """Return a plain dict of a StripeObject (or a dict)."""
    return value.to_dict() if hasattr(value, "to_dict") else dict(value)


def _timestamp(value: Any) -> datetime | None:
    """Turn a Unix timestamp into an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def _item(subscription: Any) -> Any:
    """Return the subscription's one item (our subscriptions have exactly one)."""
    return subscription["items"]["data"][0]


def _interval(subscription: Any) -> str | None:
    """Return the billing interval of the subscription's item (a plan, or a price's recurring)."""
    item = _item(subscription)
    plan = _get(item, "plan")
    if plan is not None:
        return _get(plan, "interval")
    return _get(_get(_get(item, "price"), "recurring"), "interval")


def _period(subscription: Any) -> tuple[int, int]:
    """Return (start, end) of the current period: on the subscription up to API 2025-02-24,
    on its items from 2025-03-31 (basil) on."""
    for holder in (subscription, _item(subscription)):
        start, end = _get(holder, "current_period_start"), _get(holder, "current_period_end")
        if start is not None and end is not None:
            return int(start), int(end)
    raise GatewayError(f"subscription {subscription['id']} has no current period")


def _latest_intent(subscription: Any) -> Any | None:
    """Return the expanded payment intent of the subscription's latest invoice, if any."""
    invoice = _expanded(_get(subscription, "latest_invoice"))
    return _expanded(_get(invoice, "payment_intent")) if invoice is not None else None


def _invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    """Return an invoice's subscription id (`subscription` before basil, `parent` after)."""
    if _get(invoice, "subscription"):
        return _id(invoice["subscription"])
    details = _get(_get(invoice, "parent"), "subscription_details")
    return _id(_get(details, "subscription"))


def _is_proration(line: Any) -> bool:
    """Tell whether an invoice line is a proration (`proration`, or under `parent` since basil)."""
    if _get(line, "proration"):
        return True
    details = _get(_get(line, "parent"), "subscription_item_details")
    return bool(_get(details, "proration"))


def _card(payment_method: Any) -> CardDetails:
    """Return the API's view of a card payment method (never its number)."""
    card = _get(payment_method, "card")
    if card is None:
        raise UnknownPaymentMethod(f"{payment_method['id']} is not a card")
    return CardDetails(
        payment_method_id=payment_method["id"],
        type=payment_method["type"],
        brand=card["brand"],
        last4=card["last4"],
        exp_month=int(card["exp_month"]),
        exp_year=int(card["exp_year"]),
    )


def _subscription(subscription: Any, card: CardDetails | None = None) -> ProviderSubscription:
    """Translate a Stripe subscription (with SUBSCRIPTION_EXPAND) into ProviderSubscription."""
    status = STATUS_MAP.get(subscription["status"])
    if status is None:
        raise GatewayError(f"unknown Stripe subscription status {subscription['status']!r}")
    item = _item(subscription)
    plan = _get(item, "plan") or _get(item, "price")
    start, end = _period(subscription)
    invoice = _expanded(_get(subscription, "latest_invoice"))
    intent = _latest_intent(subscription)
    if card is None:
        customer = _expanded(_get(subscription, "customer"))
        settings = _get(customer, "invoice_settings")
        default = _expanded(_get(settings, "default_payment_method"))
        card = _card(default) if default is not None else None
    # The next action only while the payment waits for the customer; the secret whenever there
    # is an intent, as Stripe integrations (and the local gateway) hand it to the client.
    pending = _get(subscription, "pending_update")
    waiting = (
        intent is not None
        and intent["status"] == "requires_action"
        and (status in ("INCOMPLETE", "PAST_DUE") or bool(pending))
    )
    pending_items = _get(pending, "subscription_items") or []
    pending_plan = (
        _get(pending_items[0], "plan") or _get(pending_items[0], "price")
        if (pending_items)
        else None
    )
    amount = _get(invoice, "total", _get(invoice, "amount_due"))
    return ProviderSubscription(
        id=subscription["id"],
        customer_id=_id(subscription["customer"]),
        plan_id=plan["id"],
        status=status,
        current_period_start=_timestamp(start),
        current_period_end=_timestamp(end),
        cancel_at_period_end=bool(_get(subscription, "cancel_at_period_end", False)),
        trial_end=_timestamp(_get(subscription, "trial_end")),
        payment_method=card,
        latest_invoice_id=_id(_get(subscription, "latest_invoice")),
        latest_invoice_amount_cents=None if amount is None else int(amount),
        client_secret=_get(intent, "client_secret"),
        next_action=_as_dict(intent["next_action"])
        if waiting and _get(intent, "next_action")
        else None,
        pending_plan_id=_get(pending_plan, "id") if pending_plan else None,
        pending_expires_at=_timestamp(_get(pending, "expires_at")) if pending else None,
    )


def _invoice_summary(invoice: Any) -> InvoiceSummary:
    """Show a Stripe invoice as GET /api/account/invoices does."""
    lines = _get(_get(invoice, "lines"), "data") or []
    plans = [_get(_get(line, "plan") or _get(line, "price"), "id") for line in lines]
    discounts = _get(invoice, "total_discount_amounts") or []
    return InvoiceSummary(
        id=invoice["id"],
        number=_get(invoice, "number"),
        status=invoice["status"],
        total=int(_get(invoice, "total", 0)),
        amount_due=int(_get(invoice, "amount_due", 0)),
        amount_paid=int(_get(invoice, "amount_paid", 0)),
        amount_remaining=int(_get(invoice, "amount_remaining", 0)),
        discount=sum(int(d["amount"]) for d in discounts),
        currency=str(_get(invoice, "currency", "usd")).upper(),
        created_at=_timestamp(invoice["created"]),
        period_start=_timestamp(_get(invoice, "period_start")),
        period_end=_timestamp(_get(invoice, "period_end")),
        plan_id=next((plan for plan in plans if plan), None),
        hosted_invoice_url=_get(invoice, "hosted_invoice_url"),
    )
