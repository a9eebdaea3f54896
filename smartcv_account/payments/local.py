"""The local gateway: a model of Stripe test mode that needs no account and no network.

It answers Stripe's documented test payment methods the way Stripe test mode does, keeps the
provider's books (customers, subscriptions, invoices, payment intents) in this service's
database, prorates by the second from `clock.now()`, renews and ends subscriptions when
`advance` runs, and signs its events with the webhook secret exactly as Stripe does.
"""

from __future__ import annotations

import calendar
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .. import clock
from ..extensions import db
from ..models import Plan
from .base import (
    CardDetails,
    CouponLike,
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
from .local_models import LocalCustomer, LocalInvoice, LocalPaymentMethod, LocalSubscription


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

STRIPE_STATUS = {
    "active": "ACTIVE",
    "trialing": "TRIALING",
    "past_due": "PAST_DUE",
    "incomplete": "INCOMPLETE",
    "canceled": "CANCELED",
    "incomplete_expired": "CANCELED",
    "unpaid": "CANCELED",
}


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


class LocalGateway(PaymentGateway):
    """Stripe test mode, modelled in-process with its books in the service's database."""

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
        db.session.commit()
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
        db.session.commit()
        return _card(method)

    # --- subscriptions -----------------------------------------------------------------------

    def create_subscription(
        self,
        customer_id: str,
        plan: PlanLike,
        payment_method: CardDetails,
        coupon: CouponLike | None,
        idempotency_key: str,
    ) -> ProviderSubscription:
        """Start a subscription and pay its first invoice on-session (3-D Secure may be needed)."""
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
        lines = [_line(f"1 × {plan.name}", price)]
        if coupon is not None:
            lines.append(
                _line(f"{coupon.code} ({coupon.percent_off}% off)", -_discount(price, coupon))
            )
        invoice = self._invoice(subscription, "subscription_create", lines, now)
        self._pay(invoice, subscription, on_session=True)
        if invoice.status == "paid":
            subscription.status = "active"
        elif invoice.payment_status == "requires_payment_method":
            subscription.status = "incomplete_expired"
            subscription.ended_at = now
            db.session.commit()
            raise PaymentDeclined(invoice.decline_code or "card_declined")
        db.session.commit()
        return self._view(subscription)

    def retrieve_subscription(self, subscription_id: str) -> ProviderSubscription:
        """Read a local subscription."""
        return self._view(self._get(subscription_id))

    def preview_proration(
        self, subscription_id: str, new_plan: PlanLike, proration_behavior: str
    ) -> int:
        """Return what a swap to `new_plan` now would bill now."""
        subscription = self._get(subscription_id)
        return self._proration(subscription, new_plan, proration_behavior, clock.now())[0]

    def change_plan(
        self,
        subscription_id: str,
        new_plan: PlanLike,
        proration_behavior: str,
        idempotency_key: str,
    ) -> PlanChange:
        """Swap plans now: same interval keeps the period, a new interval starts one now."""
        subscription = self._get(subscription_id)
        now = clock.now()
        amount, lines, new_period = self._proration(subscription, new_plan, proration_behavior, now)
        if new_period and proration_behavior == "none":
            # Nothing is billed now: the new plan and interval take over at the renewal.
            subscription.pending_plan_id = new_plan.id
        else:
            subscription.plan_id = new_plan.id
            subscription.pending_plan_id = None
            if new_period:
                subscription.billing_anchor = now
                subscription.current_period_start = now
                subscription.current_period_end = period_end(now, new_plan.interval, 1)
        if lines:
            invoice = self._invoice(subscription, "subscription_update", lines, now)
            self._pay(invoice, subscription, on_session=False)
            if invoice.status != "paid":
                db.session.rollback()
                raise PaymentDeclined(invoice.decline_code or "card_declined")
        subscription.cancel_at_period_end = False
        db.session.commit()
        return PlanChange(self._view(subscription), amount)

    def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> ProviderSubscription:
        """Schedule or withdraw the cancellation at period end."""
        subscription = self._get(subscription_id)
        subscription.cancel_at_period_end = cancel
        db.session.commit()
        return self._view(subscription)

    def cancel_now(self, subscription_id: str) -> ProviderSubscription:
        """End a subscription at once."""
        subscription = self._get(subscription_id)
        subscription.status = "canceled"
        subscription.ended_at = clock.now()
        db.session.commit()
        return self._view(subscription)

    def forget_customer(self, customer_id: str, user_public_id: str) -> None:
        """Blank the customer's email and re-tag it; its invoices stay (no commit)."""
        customer = db.session.get(LocalCustomer, customer_id)
        if customer is not None:
            customer.email = ""
            customer.user_public_id = user_public_id
            db.session.flush()

    def update_payment_method(
        self, subscription_id: str, customer_id: str, payment_method_id: str
    ) -> ProviderSubscription:
        """Make a new card the default and retry an unpaid invoice with it."""
        card = self.attach_payment_method(customer_id, payment_method_id)
        subscription = self._get(subscription_id)
        subscription.default_payment_method_id = card.payment_method_id
        invoice = self._latest_invoice(subscription)
        if invoice is not None and invoice.status == "open" and subscription.status == "past_due":
            self._pay(invoice, subscription, on_session=True)
            if invoice.status == "paid":
                subscription.status = "active"
        db.session.commit()
        return self._view(subscription)

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
        while subscription.status in ("active", "past_due", "trialing") and (
            subscription.current_period_end <= now
        ):
            if subscription.cancel_at_period_end or subscription.status == "past_due":
                # A pending cancel takes effect; an invoice still unpaid a whole period later
                # ends the subscription, as Stripe's default dunning settings do.
                subscription.status = "canceled"
                subscription.ended_at = subscription.current_period_end
                break
            self._renew(subscription)
        db.session.commit()
        return self._view(subscription)

    def _renew(self, subscription: LocalSubscription) -> None:
        """Start the next period and charge it off-session (a decline makes it past_due)."""
        if subscription.pending_plan_id:
            subscription.plan_id = subscription.pending_plan_id
            subscription.pending_plan_id = None
            subscription.billing_anchor = subscription.current_period_end
        plan = db.session.get(Plan, subscription.plan_id)
        start = subscription.current_period_end
        cycles = 1
        while period_end(subscription.billing_anchor, plan.interval, cycles) <= start:
            cycles += 1
        subscription.current_period_start = start
        subscription.current_period_end = period_end(
            subscription.billing_anchor, plan.interval, cycles
        )
        invoice = self._invoice(
            subscription,
            "subscription_cycle",
            [_line(f"1 × {plan.name}", plan.price_cents or 0)],
            start,
        )
        self._pay(invoice, subscription, on_session=False)
        subscription.status = "active" if invoice.status == "paid" else "past_due"

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
        if invoice is None or invoice.payment_status != "requires_action":
            raise UnknownPaymentMethod(f"no payment awaits authentication: {invoice_or_intent_id}")
        subscription = self._get(invoice.subscription_id)
        if succeed:
            invoice.payment_status = "succeeded"
            invoice.status = "paid"
            invoice.amount_paid = invoice.amount_due
            if subscription.status in ("incomplete", "past_due"):
                subscription.status = "active"
            event_type = "invoice.paid"
        else:
            invoice.payment_status = "requires_payment_method"
            event_type = "invoice.payment_failed"
        db.session.commit()
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

    # --- events and catalogue ----------------------------------------------------------------

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

    def sync_catalogue(self, plans: list[PlanLike], coupons: list[CouponLike]) -> None:
        """Nothing to do: the local provider reads plans and coupons from our tables."""

    # --- internals ---------------------------------------------------------------------------

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

    def _proration(
        self, subscription: LocalSubscription, new_plan: PlanLike, behaviour: str, now: datetime
    ) -> tuple[int, list[dict[str, Any]], bool]:
        """Return (amount billed now, invoice lines, whether a new period starts)."""
        old_plan = db.session.get(Plan, subscription.plan_id)
        new_period = old_plan.interval != new_plan.interval
        if behaviour == "none":
            return 0, [], new_period
        total = int(
            (subscription.current_period_end - subscription.current_period_start).total_seconds()
        )
        remaining = max(0, int((subscription.current_period_end - now).total_seconds()))
        credit = prorate(old_plan.price_cents or 0, remaining, total)
        lines = [_line(f"Unused time on {old_plan.name}", -credit, proration=True)]
        if new_period:
            lines.append(_line(f"1 × {new_plan.name}", new_plan.price_cents or 0))
        else:
            lines.append(
                _line(
                    f"Remaining time on {new_plan.name}",
                    prorate(new_plan.price_cents or 0, remaining, total),
                    proration=True,
                )
            )
        return sum(line["amount"] for line in lines), lines, new_period

    def _invoice(
        self,
        subscription: LocalSubscription,
        reason: str,
        lines: list[dict[str, Any]],
        now: datetime,
    ) -> LocalInvoice:
        """Add an invoice with these lines and make it the subscription's latest."""
        invoice = LocalInvoice(
            id=_new_id("in"),
            subscription_id=subscription.id,
            customer_id=subscription.customer_id,
            billing_reason=reason,
            amount_due=sum(line["amount"] for line in lines),
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
        """Settle an invoice: credit first, then the card; a negative total becomes credit."""
        customer = db.session.get(LocalCustomer, invoice.customer_id)
        due = invoice.amount_due + customer.balance_cents
        if due <= 0:
            customer.balance_cents = due
            invoice.status, invoice.payment_status = "paid", None
            invoice.amount_paid = 0
            return
        customer.balance_cents = 0
        method = db.session.get(LocalPaymentMethod, subscription.default_payment_method_id)
        invoice.payment_intent_id = _new_id("pi")
        invoice.client_secret = f"{invoice.payment_intent_id}_secret_{secrets.token_hex(8)}"
        invoice.status = "open"
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
            invoice.amount_paid = due
        if invoice.status != "paid":
            customer.balance_cents = due - invoice.amount_due  # restore the credit unused

    def _view(self, subscription: LocalSubscription) -> ProviderSubscription:
        """Show a local subscription in the gateway's vocabulary."""
        invoice = self._latest_invoice(subscription)
        method = (
            db.session.get(LocalPaymentMethod, subscription.default_payment_method_id)
            if subscription.default_payment_method_id
            else None
        )
        waiting = invoice is not None and invoice.payment_status == "requires_action"
        return ProviderSubscription(
            id=subscription.id,
            customer_id=subscription.customer_id,
            plan_id=subscription.plan_id,
            status=STRIPE_STATUS[subscription.status],
            current_period_start=subscription.current_period_start,
            current_period_end=subscription.current_period_end,
            cancel_at_period_end=subscription.cancel_at_period_end,
            payment_method=_card(method) if method else None,
            latest_invoice_id=invoice.id if invoice else None,
            latest_invoice_amount_cents=invoice.amount_due if invoice else None,
            client_secret=invoice.client_secret if invoice else None,
            next_action={"type": "use_stripe_sdk"} if waiting else None,
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


def _line(description: str, amount: int, proration: bool = False) -> dict[str, Any]:
    """Make an invoice line."""
    return {"description": description, "amount": amount, "proration": proration}


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
