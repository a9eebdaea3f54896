"""The local gateway: a model of Stripe test mode that needs no account and no network.

It answers Stripe's documented test payment methods the way Stripe test mode does, keeps the
provider's books (customers, subscriptions, invoices, payment intents) in this service's
database, prorates by the second from `clock.now()`, renews and ends subscriptions when
`advance` runs, and signs its events with the webhook secret exactly as Stripe does.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .. import clock
from ..extensions import db
from ..models import Plan
from .base import (
    CardDetails,
    ChangePreview,
    CouponLike,
    GatewayError,
    IdempotencyKeyReused,
    InvoiceSummary,
    PaymentDeclined,
    PaymentGateway,
    PlanChange,
    PlanLike,
    ProviderSubscription,
    UnknownPaymentMethod,
    WebhookEvent,
    sign_payload,
    verify_signature,
)
from .local_models import (
    LocalCustomer,
    LocalIdempotencyKey,
    LocalInvoice,
    LocalInvoiceItem,
    LocalPaymentMethod,
    LocalSubscription,
)
from .statuses import service_status


@dataclass(frozen=True)
class TestCard:
    """How one of Stripe's test payment methods behaves."""

    brand: str
    last4: str
    behaviour: str  # succeed | decline_on_attach | decline_on_charge | authenticate
    decline_code: str | None = None


# Stripe's documented test payment methods (https://docs.stripe.com/testing).
TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242", "succeed"),
    "pm_card_mastercard": TestCard("mastercard", "4444", "succeed"),
    "pm_card_amex": TestCard("amex", "8431", "succeed"),
    "pm_card_chargeDeclined": TestCard("visa", "0002", "decline_on_attach", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard(
        "visa", "9995", "decline_on_attach", "insufficient_funds"
    ),
    # Attaches fine, then every charge fails (Stripe's 4000000000000341).
    "pm_card_chargeCustomerFail": TestCard("visa", "0341", "decline_on_charge", "card_declined"),
    # Needs 3-D Secure on every payment (Stripe's 4000002760003184); off-session charges fail.
    "pm_card_authenticationRequired": TestCard("visa", "3184", "authenticate"),
}

INCOMPLETE_EXPIRY = timedelta(hours=23)
# Stripe discards a pending update whose payment was not completed within 23 hours.
PENDING_UPDATE_EXPIRY = timedelta(hours=23)
# Local dunning: a failed renewal is charged again this long after it failed; when the last
# retry fails the subscription is canceled (Stripe's "Smart Retries" pick their own times).
RETRY_DELAYS = (timedelta(days=1), timedelta(days=3), timedelta(days=5))


def _new_id(prefix: str) -> str:
    """Return a Stripe-style id such as `pi_3f9c…`."""
    return f"{prefix}_{secrets.token_hex(12)}"


def add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months, clamping the day as Stripe does (Jan 31 + 1 month = Feb 28/29)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def period_end(anchor: datetime, interval: str, cycles: int) -> datetime:
    """Return the end of billing cycle number `cycles` (1-based) counted from `anchor`."""
    return add_months(anchor, cycles * (12 if interval == "year" else 1))


def prorate(amount_cents: int, remaining_seconds: int, total_seconds: int) -> int:
    """Return `amount × remaining / total` rounded half up to the cent, in integers only."""
    if total_seconds <= 0:
        return 0
    return (2 * amount_cents * remaining_seconds + total_seconds) // (2 * total_seconds)


@dataclass(frozen=True, slots=True)
class _Quote:
    """A plan swap worked out: lines billed now, lines left for the next invoice, totals."""

    now_lines: list[dict[str, Any]]
    later_lines: list[dict[str, Any]]
    new_period: bool
    proration_cents: int
    amount_due_cents: int
    next_billing_date: datetime
    next_billing_cents: int


class LocalGateway(PaymentGateway):
    """Stripe test mode, modelled in-process with its books in the service's database.

    Like every gateway it only adds and flushes rows in the caller's session: the service owns
    the transaction and decides when the provider's books are committed with its own.
    """

    name = "local"

    def __init__(self, webhook_secret: str) -> None:
        self.webhook_secret = webhook_secret

    # --- customers and cards -----------------------------------------------------------------

    def ensure_customer(self, user_public_id: str, email: str, customer_id: str | None) -> str:
        """Return the user's local customer, creating it on first use."""
        if customer_id and db.session.get(LocalCustomer, customer_id) is not None:
            return customer_id
        existing = db.session.scalar(
            sa.select(LocalCustomer).where(LocalCustomer.user_public_id == user_public_id)
        )
        if existing is not None:
            return existing.id
        customer = LocalCustomer(
            id=_new_id("cus"),
            user_public_id=user_public_id,
            email=email,
            balance_cents=0,
            created_at=clock.now(),
        )
        db.session.add(customer)
        db.session.flush()
        return customer.id

    def attach_payment_method(self, customer_id: str, payment_method_id: str) -> CardDetails:
        """Attach one of Stripe's test payment methods; declining cards fail here as in Stripe."""
        card = TEST_CARDS.get(payment_method_id)
        if card is None:
            attached = db.session.get(LocalPaymentMethod, payment_method_id)
            if attached is None or attached.customer_id != customer_id:
                raise UnknownPaymentMethod(payment_method_id)
            method = attached
        else:
            if card.behaviour == "decline_on_attach":
                raise PaymentDeclined(card.decline_code or "generic_decline")
            method = LocalPaymentMethod(
                id=_new_id("pm"),
                customer_id=customer_id,
                brand=card.brand,
                last4=card.last4,
                exp_month=12,
                exp_year=clock.now().year + 3,
                behaviour=card.behaviour,
                decline_code=card.decline_code,
                created_at=clock.now(),
            )
            db.session.add(method)
        customer = db.session.get(LocalCustomer, customer_id)
        customer.default_payment_method_id = method.id
        db.session.flush()
        return _card(method)

    # --- subscriptions -----------------------------------------------------------------------

    def create_subscription(
        self,
        customer_id: str,
        plan: PlanLike,
        payment_method: CardDetails,
        coupon: CouponLike | None,
        idempotency_key: str,
        user_public_id: str | None = None,
    ) -> ProviderSubscription:
        """Start a subscription and pay its first invoice on-session (3-D Secure may be needed).

        A declined first payment leaves what Stripe leaves: the customer, its card and an
        expired subscription whose invoice is void.
        """
        existing = db.session.scalar(
            sa.select(LocalSubscription).where(LocalSubscription.idempotency_key == idempotency_key)
        )
        if existing is not None:
            return self._view(existing)
        now = clock.now()
        subscription = LocalSubscription(
            id=_new_id("sub"),
            customer_id=customer_id,
            plan_id=plan.id,
            status="incomplete",
            billing_anchor=now,
            current_period_start=now,
            current_period_end=period_end(now, plan.interval, 1),
            cancel_at_period_end=False,
            default_payment_method_id=payment_method.payment_method_id,
            idempotency_key=idempotency_key,
            created_at=now,
        )
        db.session.add(subscription)
        db.session.flush()  # the invoice below refers to it; no relationship orders the inserts
        price = plan.price_cents or 0
        lines = [_line(f"1 × {plan.name}", price, plan_id=plan.id)]
        if coupon is not None:
            lines.append(
                _line(
                    f"{coupon.code} ({coupon.percent_off}% off)",
                    -_discount(price, coupon),
                    plan_id=plan.id,
                    discount=True,
                )
            )
        invoice = self._invoice(subscription, "subscription_create", lines, now)
        self._pay(invoice, subscription, on_session=True)
        if invoice.status == "paid":
            subscription.status = "active"
        elif invoice.payment_status == "requires_payment_method":
            self._void(invoice)
            subscription.status = "incomplete_expired"
            subscription.ended_at = now
            db.session.flush()
            raise PaymentDeclined(invoice.decline_code or "card_declined")
        db.session.flush()
        return self._view(subscription)

    def retrieve_subscription(self, subscription_id: str) -> ProviderSubscription:
        """Read a local subscription (an unknown id is a GatewayError, as Stripe's 404 is)."""
        subscription = db.session.get(LocalSubscription, subscription_id)
        if subscription is None:
            raise GatewayError(f"No such subscription: {subscription_id!r}")
        return self._view(subscription)

    def customer_user_id(self, customer_id: str) -> str | None:
        """Return the user a local customer was made for."""
        customer = db.session.get(LocalCustomer, customer_id)
        return customer.user_public_id if customer is not None else None

    def preview_change(
        self, subscription_id: str, new_plan: PlanLike, proration_behavior: str
    ) -> ChangePreview:
        """Return what a swap to `new_plan` now would create, bill now and bill next."""
        quote = self._quote(self._get(subscription_id), new_plan, proration_behavior, clock.now())
        return ChangePreview(
            quote.proration_cents,
            quote.amount_due_cents,
            quote.next_billing_date,
            quote.next_billing_cents,
        )

    def change_plan(
        self,
        subscription_id: str,
        new_plan: PlanLike,
        proration_behavior: str,
        idempotency_key: str,
    ) -> PlanChange:
        """Swap plans as Stripe does with `payment_behavior=pending_if_incomplete`.

        Same interval keeps the period; a new interval starts one now and bills it now. A
        declined payment voids the invoice and changes nothing; a payment needing 3-D Secure
        leaves the swap pending until it is paid.
        """
        params = {"plan": new_plan.id, "proration_behavior": proration_behavior}

        def run() -> dict[str, Any]:
            change = self._change_plan(subscription_id, new_plan, proration_behavior)
            return {
                "subscription": _encode(change.subscription),
                "proration_cents": change.proration_cents,
                "amount_due_cents": change.amount_due_cents,
            }

        stored = self._once(idempotency_key, "change_plan", subscription_id, params, run)
        return PlanChange(
            _decode(stored["subscription"]), stored["proration_cents"], stored["amount_due_cents"]
        )

    def _change_plan(
        self, subscription_id: str, new_plan: PlanLike, proration_behavior: str
    ) -> PlanChange:
        """Do the swap `change_plan` describes (without its idempotency)."""
        subscription = self._get(subscription_id)
        now = clock.now()
        quote = self._quote(subscription, new_plan, proration_behavior, now)
        if quote.now_lines:
            invoice = self._invoice(subscription, "subscription_update", quote.now_lines, now)
            if quote.new_period:
                # It pays for the new period, which starts now (as Stripe's invoice does).
                invoice.period_start = now
                invoice.period_end = period_end(now, new_plan.interval, 1)
            self._pay(invoice, subscription, on_session=True)
            if invoice.payment_status == "requires_payment_method":
                self._void(invoice)
                db.session.flush()
                raise PaymentDeclined(invoice.decline_code or "card_declined")
            if invoice.payment_status == "requires_action":
                subscription.pending_plan_id = new_plan.id
                subscription.pending_expires_at = now + PENDING_UPDATE_EXPIRY
                db.session.flush()
                return PlanChange(self._view(subscription), quote.proration_cents, 0)
            amount_due = invoice.amount_paid
        else:
            amount_due = 0
        for line in quote.later_lines:
            db.session.add(
                LocalInvoiceItem(
                    id=_new_id("ii"),
                    subscription_id=subscription.id,
                    description=line["description"],
                    amount=line["amount"],
                    created_at=now,
                )
            )
        self._apply_swap(subscription, new_plan, quote.new_period, now)
        db.session.flush()
        return PlanChange(self._view(subscription), quote.proration_cents, amount_due)

    def _apply_swap(
        self, subscription: LocalSubscription, new_plan: PlanLike, new_period: bool, now: datetime
    ) -> None:
        """Put the subscription on `new_plan`; a new interval starts a new period at `now`."""
        subscription.plan_id = new_plan.id
        subscription.pending_plan_id = None
        subscription.pending_expires_at = None
        subscription.cancel_at_period_end = False
        if new_period:
            subscription.billing_anchor = now
            subscription.current_period_start = now
            subscription.current_period_end = period_end(now, new_plan.interval, 1)

    def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool, idempotency_key: str | None = None
    ) -> ProviderSubscription:
        """Schedule or withdraw the cancellation at period end."""

        def run() -> dict[str, Any]:
            subscription = self._get(subscription_id)
            subscription.cancel_at_period_end = cancel
            db.session.flush()
            return _encode(self._view(subscription))

        params = {"cancel_at_period_end": cancel}
        return _decode(self._once(idempotency_key, "cancel_at", subscription_id, params, run))

    def cancel_now(
        self, subscription_id: str, idempotency_key: str | None = None
    ) -> ProviderSubscription:
        """End a subscription at once; an incomplete one's open invoice is voided, as in Stripe."""

        def run() -> dict[str, Any]:
            subscription = self._get(subscription_id)
            invoice = self._latest_invoice(subscription)
            if subscription.status == "incomplete" and invoice and invoice.status == "open":
                self._void(invoice)
            if subscription.status not in ("canceled", "incomplete_expired"):
                subscription.status = "canceled"
                subscription.ended_at = clock.now()
            db.session.flush()
            return _encode(self._view(subscription))

        return _decode(self._once(idempotency_key, "cancel", subscription_id, {}, run))

    def forget_customer(self, customer_id: str, user_public_id: str) -> None:
        """Blank the customer's email and re-tag it; its invoices stay (no commit)."""
        customer = db.session.get(LocalCustomer, customer_id)
        if customer is not None:
            customer.email = ""
            customer.user_public_id = user_public_id
            db.session.flush()

    def update_payment_method(
        self,
        subscription_id: str,
        customer_id: str,
        payment_method_id: str,
        idempotency_key: str | None = None,
    ) -> ProviderSubscription:
        """Make a new card the customer's and the subscription's default (no payment here)."""

        def run() -> dict[str, Any]:
            card = self.attach_payment_method(customer_id, payment_method_id)
            subscription = self._get(subscription_id)
            subscription.default_payment_method_id = card.payment_method_id
            db.session.flush()
            return _encode(self._view(subscription))

        params = {"payment_method": payment_method_id}
        return _decode(self._once(idempotency_key, "set_card", subscription_id, params, run))

    def pay_open_invoice(self, subscription_id: str, idempotency_key: str) -> ProviderSubscription:
        """Pay the latest open invoice with the default card now, as Stripe's `invoices.pay`."""

        def run() -> dict[str, Any]:
            subscription = self._get(subscription_id)
            invoice = self._latest_invoice(subscription)
            if invoice is None or invoice.status != "open":
                return _encode(self._view(subscription))
            self._charge(invoice, subscription, on_session=True)
            if invoice.payment_status == "requires_payment_method":
                db.session.flush()
                raise PaymentDeclined(invoice.decline_code or "card_declined")
            if invoice.status == "paid":
                self._invoice_paid(subscription, invoice)
            db.session.flush()
            return _encode(self._view(subscription))

        return _decode(self._once(idempotency_key, "pay", subscription_id, {}, run))

    def advance(self, subscription_id: str) -> ProviderSubscription:
        """Run the provider's clock: renew each period that has ended, or end the subscription."""
        subscription = self._get(subscription_id)
        now = clock.now()
        if (
            subscription.status == "incomplete"
            and subscription.created_at <= now - INCOMPLETE_EXPIRY
        ):
            # As Stripe does: a first payment not completed within 23 hours expires it.
            subscription.status = "incomplete_expired"
            subscription.ended_at = now
            invoice = self._latest_invoice(subscription)
            if invoice is not None and invoice.status == "open":
                self._void(invoice)
        if subscription.pending_expires_at is not None and subscription.pending_expires_at <= now:
            self._discard_pending_update(subscription)
        while True:
            retry = self._due_retry(subscription, now)
            if retry is not None:
                self._retry(subscription, retry)
                continue
            if subscription.status not in ("active", "past_due", "trialing") or (
                subscription.current_period_end > now
            ):
                break
            if subscription.cancel_at_period_end or subscription.status == "past_due":
                # A pending cancel takes effect; an invoice still unpaid a whole period later
                # ends the subscription, as Stripe's default dunning settings do.
                subscription.status = "canceled"
                subscription.ended_at = subscription.current_period_end
                break
            self._renew(subscription)
        db.session.flush()
        return self._view(subscription)

    def _renew(self, subscription: LocalSubscription) -> None:
        """Start the next period and charge it off-session (a decline makes it past_due).

        The invoice carries the pending invoice items (prorations left for it).
        """
        plan = db.session.get(Plan, subscription.plan_id)
        start = subscription.current_period_end
        cycles = 1
        while period_end(subscription.billing_anchor, plan.interval, cycles) <= start:
            cycles += 1
        subscription.current_period_start = start
        subscription.current_period_end = period_end(
            subscription.billing_anchor, plan.interval, cycles
        )
        items = self._pending_items(subscription)
        lines = [_line(i.description, i.amount, proration=True) for i in items]
        lines.append(_line(f"1 × {plan.name}", plan.price_cents or 0, plan_id=plan.id))
        invoice = self._invoice(subscription, "subscription_cycle", lines, start)
        for item in items:
            item.invoice_id = invoice.id
        self._pay(invoice, subscription, on_session=False)
        invoice.attempt_count = 1
        if invoice.status == "paid":
            subscription.status = "active"
        else:
            subscription.status = "past_due"
            invoice.next_payment_attempt = invoice.created_at + RETRY_DELAYS[0]

    def _due_retry(self, subscription: LocalSubscription, now: datetime) -> LocalInvoice | None:
        """Return the past-due invoice whose next retry falls before `now` and the period end."""
        if subscription.status != "past_due":
            return None
        invoice = self._latest_invoice(subscription)
        if invoice is None or invoice.status != "open" or invoice.next_payment_attempt is None:
            return None
        due = invoice.next_payment_attempt
        return invoice if due <= now and due < subscription.current_period_end else None

    def _retry(self, subscription: LocalSubscription, invoice: LocalInvoice) -> None:
        """Charge the default card again; after the last failed retry, cancel the subscription."""
        attempted_at = invoice.next_payment_attempt
        self._charge(invoice, subscription, on_session=False)
        invoice.attempt_count += 1
        if invoice.status == "paid":
            subscription.status = "active"
        elif invoice.attempt_count > len(RETRY_DELAYS):
            # Stripe's subscription setting "cancel the subscription" after all retries fail,
            # with the invoice marked uncollectible: nothing more will be tried.
            invoice.status, invoice.next_payment_attempt = "uncollectible", None
            subscription.status = "canceled"
            subscription.ended_at = attempted_at
        else:
            invoice.next_payment_attempt = (
                invoice.created_at + RETRY_DELAYS[invoice.attempt_count - 1]
            )

    def _discard_pending_update(self, subscription: LocalSubscription) -> None:
        """Drop a pending plan swap and void the invoice that would have paid for it."""
        invoice = self._latest_invoice(subscription)
        if invoice is not None and invoice.status == "open":
            self._void(invoice)
        subscription.pending_plan_id = None
        subscription.pending_expires_at = None

    def _invoice_paid(self, subscription: LocalSubscription, invoice: LocalInvoice) -> None:
        """What paying an open invoice does to its subscription: a pending swap applies."""
        if subscription.pending_plan_id and invoice.billing_reason == "subscription_update":
            new_plan = db.session.get(Plan, subscription.pending_plan_id)
            old_plan = db.session.get(Plan, subscription.plan_id)
            new_period = old_plan.interval != new_plan.interval
            self._apply_swap(subscription, new_plan, new_period, invoice.created_at)
        if subscription.status in ("incomplete", "past_due", "unpaid"):
            subscription.status = "active"

    # --- test-mode helpers -------------------------------------------------------------------

    def authenticate_payment(self, invoice_or_intent_id: str, succeed: bool = True) -> bytes:
        """Complete (or fail) a payment waiting for 3-D Secure and return the event to deliver.

        This is the customer finishing the bank's challenge in Stripe.js; the returned event
        body (`invoice.paid` or `invoice.payment_failed`) is what Stripe would post to the
        webhook endpoint; sign it with `signed_event`.
        """
        invoice = db.session.scalar(
            sa.select(LocalInvoice).where(
                sa.or_(
                    LocalInvoice.id == invoice_or_intent_id,
                    LocalInvoice.payment_intent_id == invoice_or_intent_id,
                )
            )
        )
        if (
            invoice is None
            or invoice.status != "open"
            or invoice.payment_status != "requires_action"
        ):
            raise UnknownPaymentMethod(f"no payment awaits authentication: {invoice_or_intent_id}")
        subscription = self._get(invoice.subscription_id)
        if succeed:
            invoice.payment_status = "succeeded"
            invoice.status = "paid"
            invoice.amount_paid = invoice.amount_due
            self._invoice_paid(subscription, invoice)
            event_type = "invoice.paid"
        else:
            invoice.payment_status = "requires_payment_method"
            event_type = "invoice.payment_failed"
        db.session.flush()
        return self.event_body(event_type, _invoice_object(invoice))

    def event_body(self, event_type: str, obj: dict[str, Any]) -> bytes:
        """Return a Stripe-format event body for `obj`."""
        event = {
            "id": _new_id("evt"),
            "object": "event",
            "type": event_type,
            "created": int(clock.now().timestamp()),
            "data": {"object": obj},
        }
        return json.dumps(event).encode("utf-8")

    def signed_event(self, body: bytes) -> str:
        """Return the Stripe-Signature header for an event body."""
        return sign_payload(body, self.webhook_secret)

    # --- events, invoices and catalogue ------------------------------------------------------

    def parse_event(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        """Verify the signature as Stripe's libraries do and find the event's subscription."""
        event = verify_signature(payload, signature_header, self.webhook_secret)
        obj = (event.get("data") or {}).get("object") or {}
        subscription_id = None
        if isinstance(obj, dict):
            kind = obj.get("object")
            if kind == "subscription":
                subscription_id = obj.get("id")
            elif kind == "invoice":
                subscription_id = obj.get("subscription")
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

    def list_invoices(self, customer_id: str) -> list[InvoiceSummary]:
        """Return the customer's finalized invoices, newest first, numbered in order."""
        invoices = db.session.scalars(
            sa.select(LocalInvoice)
            .where(LocalInvoice.customer_id == customer_id, LocalInvoice.status != "draft")
            .order_by(LocalInvoice.number.desc())
        ).all()
        prefix = customer_id.split("_", 1)[-1][:8].upper()
        return [_summary(invoice, f"{prefix}-{invoice.number:04d}") for invoice in invoices]

    def sync_catalogue(self, plans: list[PlanLike], coupons: list[CouponLike]) -> None:
        """Nothing to do: the local provider reads plans and coupons from our tables."""

    # --- internals ---------------------------------------------------------------------------

    def _once(
        self,
        key: str | None,
        operation: str,
        subscription_id: str,
        params: dict[str, Any],
        run: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Answer a mutating request once per idempotency key, as Stripe does.

        The same key with the same parameters returns the stored answer and does nothing
        again; with other parameters it is refused. The key is kept in the caller's
        transaction, so a change the service rolls back forgets its key too.
        """
        if key is None:
            return run()
        request = json.dumps([operation, subscription_id, params], sort_keys=True)
        digest = hashlib.sha256(request.encode()).hexdigest()
        stored = db.session.get(LocalIdempotencyKey, key)
        if stored is not None:
            if stored.request_digest != digest:
                raise IdempotencyKeyReused(f"idempotency key {key!r} reused with other parameters")
            return stored.response
        response = run()
        db.session.add(
            LocalIdempotencyKey(
                key=key, request_digest=digest, response=response, created_at=clock.now()
            )
        )
        db.session.flush()
        return response

    def _get(self, subscription_id: str) -> LocalSubscription:
        """Return a local subscription by id."""
        subscription = db.session.get(LocalSubscription, subscription_id)
        if subscription is None:
            raise LookupError(f"no local subscription {subscription_id}")
        return subscription

    def _latest_invoice(self, subscription: LocalSubscription) -> LocalInvoice | None:
        """Return the subscription's latest invoice, if any."""
        if subscription.latest_invoice_id is None:
            return None
        return db.session.get(LocalInvoice, subscription.latest_invoice_id)

    def _pending_items(self, subscription: LocalSubscription) -> list[LocalInvoiceItem]:
        """Return the invoice items waiting for the subscription's next invoice."""
        return list(
            db.session.scalars(
                sa.select(LocalInvoiceItem)
                .where(
                    LocalInvoiceItem.subscription_id == subscription.id,
                    LocalInvoiceItem.invoice_id.is_(None),
                )
                .order_by(LocalInvoiceItem.created_at, LocalInvoiceItem.id)
            )
        )

    def _charged_for_period(self, subscription: LocalSubscription, plan: Plan) -> int:
        """Return what the current period's invoice actually charged for `plan` (discounts in).

        The plan's list price when no paid invoice of this period bills it (a same-interval
        swap made it the plan mid-period).
        """
        invoices = db.session.scalars(
            sa.select(LocalInvoice)
            .where(
                LocalInvoice.subscription_id == subscription.id,
                LocalInvoice.status == "paid",
                LocalInvoice.period_start == subscription.current_period_start,
            )
            .order_by(LocalInvoice.created_at.desc(), LocalInvoice.id.desc())
        )
        for invoice in invoices:
            charged = [line["amount"] for line in invoice.lines if line.get("plan") == plan.id]
            if charged:
                return sum(charged)
        return plan.price_cents or 0

    def _quote(
        self, subscription: LocalSubscription, new_plan: PlanLike, behaviour: str, now: datetime
    ) -> _Quote:
        """Work out a swap to `new_plan` at `now`: the one computation behind preview and change.

        Stripe's meanings: a new interval starts a new period now and bills it now whatever the
        behaviour; `none` makes no proration; on the same interval `always_invoice` bills the
        proration now and `create_prorations` leaves it for the next invoice. The credit for
        unused time is a share of what this period's invoice actually charged.
        """
        old_plan = db.session.get(Plan, subscription.plan_id)
        new_price = new_plan.price_cents or 0
        new_period = old_plan.interval != new_plan.interval
        total = int(
            (subscription.current_period_end - subscription.current_period_start).total_seconds()
        )
        remaining = max(0, int((subscription.current_period_end - now).total_seconds()))
        prorations: list[dict[str, Any]] = []
        if behaviour != "none":
            credit = prorate(self._charged_for_period(subscription, old_plan), remaining, total)
            prorations.append(_line(f"Unused time on {old_plan.name}", -credit, proration=True))
            if not new_period:
                prorations.append(
                    _line(
                        f"Remaining time on {new_plan.name}",
                        prorate(new_price, remaining, total),
                        proration=True,
                    )
                )
        if new_period:
            now_lines = [*prorations, _line(f"1 × {new_plan.name}", new_price, plan_id=new_plan.id)]
            later_lines: list[dict[str, Any]] = []
        elif behaviour == "always_invoice":
            now_lines, later_lines = prorations, []
        else:
            now_lines, later_lines = [], prorations
        customer = db.session.get(LocalCustomer, subscription.customer_id)
        balance = customer.balance_cents
        if now_lines:
            billed = sum(line["amount"] for line in now_lines) + balance
            amount_due, balance = max(0, billed), min(0, billed)
        else:
            amount_due = 0
        pending = sum(item.amount for item in self._pending_items(subscription))
        pending += sum(line["amount"] for line in later_lines)
        next_date = (
            period_end(now, new_plan.interval, 1) if new_period else subscription.current_period_end
        )
        return _Quote(
            now_lines=now_lines,
            later_lines=later_lines,
            new_period=new_period,
            proration_cents=sum(line["amount"] for line in now_lines + later_lines),
            amount_due_cents=amount_due,
            next_billing_date=next_date,
            next_billing_cents=max(0, new_price + pending + balance),
        )

    def _invoice(
        self,
        subscription: LocalSubscription,
        reason: str,
        lines: list[dict[str, Any]],
        now: datetime,
    ) -> LocalInvoice:
        """Add an invoice with these lines and make it the subscription's latest."""
        total = sum(line["amount"] for line in lines)
        invoice = LocalInvoice(
            id=_new_id("in"),
            subscription_id=subscription.id,
            customer_id=subscription.customer_id,
            billing_reason=reason,
            total=total,
            discount=-sum(line["amount"] for line in lines if line.get("discount")),
            amount_due=total,
            amount_paid=0,
            currency="USD",
            status="draft",
            period_start=subscription.current_period_start,
            period_end=subscription.current_period_end,
            lines=lines,
            created_at=now,
        )
        db.session.add(invoice)
        subscription.latest_invoice_id = invoice.id
        return invoice

    def _pay(
        self, invoice: LocalInvoice, subscription: LocalSubscription, on_session: bool
    ) -> None:
        """Finalize an invoice and collect it: credit balance first, then the card.

        As Stripe does, finalizing applies the customer's balance (a negative total becomes
        credit) and `amount_due` is what is left for the card.
        """
        customer = db.session.get(LocalCustomer, invoice.customer_id)
        if invoice.number is None:
            customer.invoice_count += 1
            invoice.number = customer.invoice_count
        applied = invoice.total + customer.balance_cents
        customer.balance_cents = min(0, applied)
        invoice.amount_due = max(0, applied)
        if invoice.amount_due == 0:
            invoice.status, invoice.payment_status = "paid", None
            invoice.amount_paid = 0
            return
        invoice.payment_intent_id = _new_id("pi")
        invoice.client_secret = f"{invoice.payment_intent_id}_secret_{secrets.token_hex(8)}"
        invoice.status = "open"
        self._charge(invoice, subscription, on_session)

    def _charge(
        self, invoice: LocalInvoice, subscription: LocalSubscription, on_session: bool
    ) -> None:
        """Try the subscription's default card for the invoice's amount due."""
        method = db.session.get(LocalPaymentMethod, subscription.default_payment_method_id)
        invoice.decline_code = None
        if method is None or method.behaviour == "decline_on_charge":
            invoice.payment_status = "requires_payment_method"
            invoice.decline_code = (method.decline_code if method else None) or "card_declined"
        elif method.behaviour == "authenticate":
            if on_session:
                invoice.payment_status = "requires_action"
            else:
                invoice.payment_status = "requires_payment_method"
                invoice.decline_code = "authentication_required"
        else:
            invoice.payment_status = "succeeded"
            invoice.status = "paid"
            invoice.amount_paid = invoice.amount_due
            invoice.next_payment_attempt = None

    def _void(self, invoice: LocalInvoice) -> None:
        """Void an open invoice, giving back the credit balance it had used (as Stripe does)."""
        customer = db.session.get(LocalCustomer, invoice.customer_id)
        customer.balance_cents += invoice.amount_due - invoice.total
        invoice.status = "void"
        invoice.payment_status = "canceled"

    def _view(self, subscription: LocalSubscription) -> ProviderSubscription:
        """Show a local subscription in the gateway's vocabulary."""
        invoice = self._latest_invoice(subscription)
        method = (
            db.session.get(LocalPaymentMethod, subscription.default_payment_method_id)
            if subscription.default_payment_method_id
            else None
        )
        waiting = (
            invoice is not None
            and invoice.status == "open"
            and invoice.payment_status == "requires_action"
        )
        return ProviderSubscription(
            id=subscription.id,
            customer_id=subscription.customer_id,
            plan_id=subscription.plan_id,
            status=service_status(subscription.status),
            current_period_start=subscription.current_period_start,
            current_period_end=subscription.current_period_end,
            cancel_at_period_end=subscription.cancel_at_period_end,
            payment_method=_card(method) if method else None,
            latest_invoice_id=invoice.id if invoice else None,
            latest_invoice_amount_cents=invoice.total if invoice else None,
            client_secret=invoice.client_secret if invoice else None,
            next_action={"type": "use_stripe_sdk"} if waiting else None,
            pending_plan_id=subscription.pending_plan_id,
            pending_expires_at=subscription.pending_expires_at,
            next_invoice_amount_cents=self._next_amount(subscription),
            next_payment_attempt=invoice.next_payment_attempt if invoice else None,
        )

    def _next_amount(self, subscription: LocalSubscription) -> int | None:
        """Return what the next regular invoice will charge, or None when none is coming."""
        if subscription.status not in ("active", "trialing", "past_due"):
            return None
        if subscription.cancel_at_period_end:
            return None
        plan = db.session.get(Plan, subscription.plan_id)
        customer = db.session.get(LocalCustomer, subscription.customer_id)
        pending = sum(item.amount for item in self._pending_items(subscription))
        return max(0, (plan.price_cents or 0) + pending + customer.balance_cents)


def _encode(subscription: ProviderSubscription) -> dict[str, Any]:
    """Turn a ProviderSubscription into JSON (a stored idempotent answer)."""
    return json.loads(json.dumps(asdict(subscription), default=datetime.isoformat))


def _decode(data: dict[str, Any]) -> ProviderSubscription:
    """Rebuild a ProviderSubscription stored by `_encode`."""
    values = dict(data)
    for key in (
        "current_period_start",
        "current_period_end",
        "trial_end",
        "pending_expires_at",
        "next_payment_attempt",
    ):
        if values.get(key) is not None:
            values[key] = datetime.fromisoformat(values[key])
    if values.get("payment_method") is not None:
        values["payment_method"] = CardDetails(**values["payment_method"])
    return ProviderSubscription(**values)


def _summary(invoice: LocalInvoice, number: str) -> InvoiceSummary:
    """Show a local invoice as GET /api/account/invoices does."""
    plans = [line["plan"] for line in invoice.lines if line.get("plan")]
    return InvoiceSummary(
        id=invoice.id,
        number=number,
        status=invoice.status,
        total=invoice.total,
        amount_due=invoice.amount_due,
        amount_paid=invoice.amount_paid,
        amount_remaining=invoice.amount_due - invoice.amount_paid
        if invoice.status == "open"
        else 0,
        discount=invoice.discount,
        currency=invoice.currency,
        created_at=invoice.created_at,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        plan_id=plans[0] if plans else None,
        hosted_invoice_url=None,
    )


def _card(method: LocalPaymentMethod) -> CardDetails:
    """Show a stored card as CardDetails."""
    return CardDetails(
        payment_method_id=method.id,
        type="card",
        brand=method.brand,
        last4=method.last4,
        exp_month=method.exp_month,
        exp_year=method.exp_year,
    )


def _line(
    description: str,
    amount: int,
    proration: bool = False,
    plan_id: str | None = None,
    discount: bool = False,
) -> dict[str, Any]:
    """Make an invoice line; `plan` marks the lines charging a plan's period (and its discount)."""
    line: dict[str, Any] = {"description": description, "amount": amount, "proration": proration}
    if plan_id is not None:
        line["plan"] = plan_id
    if discount:
        line["discount"] = True
    return line


def _discount(price_cents: int, coupon: CouponLike) -> int:
    """Return the coupon's discount on `price_cents`, rounded half up to the cent."""
    return (2 * price_cents * coupon.percent_off + 100) // 200


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
