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
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import stripe

from .base import (
    PRORATION_BEHAVIORS,
    CardDetails,
    CouponLike,
    GatewayError,
    GatewayUnavailable,
    InvalidSignature,
    PaymentDeclined,
    PaymentGateway,
    PlanChange,
    PlanLike,
    ProviderSubscription,
    UnknownPaymentMethod,
    WebhookEvent,
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
    "unpaid": "CANCELED",
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
            )

    def attach_payment_method(self, customer_id: str, payment_method_id: str) -> CardDetails:
        """Attach the payment method and make it the customer's default for invoices."""
        with _translate_errors(payment_method=True):
            payment_method = self._client.v1.payment_methods.attach(
                payment_method_id, params={"customer": customer_id}
            )
        with _translate_errors():
            # Subscriptions bill the customer's default; we never set one per subscription
            # (see create_subscription), so this is the single place the card is chosen.
            self._client.v1.customers.update(
                customer_id,
                params={"invoice_settings": {"default_payment_method": payment_method["id"]}},
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

    def retrieve_subscription(self, subscription_id: str) -> ProviderSubscription:
        """Read the subscription, its latest payment and its card from Stripe."""
        with _translate_errors():
            subscription = self._client.v1.subscriptions.retrieve(
                subscription_id, params={"expand": SUBSCRIPTION_EXPAND}
            )
        return _subscription(subscription)

    def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> ProviderSubscription:
        """Schedule (True) or withdraw (False) cancellation at the end of the period."""
        with _translate_errors():
            subscription = self._client.v1.subscriptions.update(
                subscription_id,
                params={"cancel_at_period_end": cancel, "expand": SUBSCRIPTION_EXPAND},
            )
        return _subscription(subscription)

    def cancel_now(self, subscription_id: str) -> ProviderSubscription:
        """End the subscription now; cancelling an already ended one just reads it."""
        try:
            with _translate_errors():
                subscription = self._client.v1.subscriptions.cancel(
                    subscription_id, params={"expand": SUBSCRIPTION_EXPAND}
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
        self, subscription_id: str, customer_id: str, payment_method_id: str
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
                )
        return _subscription(subscription, card)

    def advance(self, subscription_id: str) -> ProviderSubscription:
        """Re-read the subscription: Stripe renews and ends subscriptions on its own clock."""
        return self.retrieve_subscription(subscription_id)

    # Plan changes

    def preview_proration(
        self, subscription_id: str, new_plan: PlanLike, proration_behavior: str
    ) -> int:
        """Return what swapping to `new_plan` now would bill (negative: a credit), in cents."""
        _check_behavior(proration_behavior)
        if proration_behavior == "none":
            return 0
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
        """Swap the plan now, prorating as asked, and clear a pending cancel."""
        _check_behavior(proration_behavior)
        with _translate_errors():
            subscription = self._client.v1.subscriptions.retrieve(subscription_id)
        params: dict[str, Any] = {
            "items": [{"id": _item(subscription)["id"], "plan": new_plan.id}],
            "proration_behavior": proration_behavior,
            "cancel_at_period_end": False,
            "expand": SUBSCRIPTION_EXPAND,
        }
        proration_cents = 0
        if proration_behavior != "none":
            # Stripe's clock, not the service's (tests freeze that one); the same second for the
            # preview and the swap makes the amount we report the amount Stripe bills.
            proration_date = int(time.time())
            proration_cents = self._preview(
                subscription, new_plan, proration_behavior, proration_date
            )
            params["proration_date"] = proration_date
        with _translate_errors():
            updated = self._client.v1.subscriptions.update(
                subscription_id, params=params, options={"idempotency_key": idempotency_key}
            )
        return PlanChange(subscription=_subscription(updated), proration_cents=proration_cents)

    def _preview(
        self,
        subscription: Any,
        new_plan: PlanLike,
        proration_behavior: str,
        proration_date: int,
    ) -> int:
        """Sum the preview lines the swap bills: prorations and a new period starting now."""
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
        total = 0
        for line in preview["lines"]["data"]:
            # A line of the next regular period (same interval) is billed then, not by this
            # change. A change of interval restarts the period now: its first period line is
            # billed now, next to the credit for the unused time (monthly -> yearly ~ 27000).
            starts_before_end = int(line["period"]["start"]) < period_end
            if _is_proration(line) or starts_before_end:
                total += int(line["amount"])
        return total

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
        if not signature_header:
            raise InvalidSignature("missing Stripe-Signature header")
        try:
            stripe.Webhook.construct_event(
                payload, signature_header, self._webhook_secret, api_key=self._api_key
            )
            # Verified: our own plain-dict copy is what services keep and compare.
            event = json.loads(payload)
        except stripe.SignatureVerificationError as exc:
            raise InvalidSignature(str(exc)) from None
        except ValueError:
            # Not UTF-8 or not JSON (after a valid signature only if the sender is broken).
            raise InvalidSignature("payload is not a JSON event") from None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise InvalidSignature("payload is not an event")
        return WebhookEvent(
            id=event["id"],
            type=event["type"],
            subscription_id=self._event_subscription(event["type"], event["data"]["object"]),
            payload=event,
        )

    def _event_subscription(self, event_type: str, obj: Mapping[str, Any]) -> str | None:
        """Work out the subscription an event is about, asking Stripe when the event can't tell."""
        if event_type.startswith("customer.subscription."):
            return obj["id"]
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
    waiting = (
        intent is not None
        and intent["status"] == "requires_action"
        and status in ("INCOMPLETE", "PAST_DUE")
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
    )
