"""Invoices of local subscriptions: their lines, finalizing and paying them, voiding, listing.

Stripe's meanings throughout: finalizing applies the customer's credit balance, `amount_due`
is what is left for the card, and a voided invoice gives back the credit it had used.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ..base import CouponLike, GatewayError, InvoiceSummary, PaymentDeclined, PlanLike
from ..previews import coupon_discount

__all__ = ["coupon_discount"]  # the local books' lines use the previews' rounding
from .cards import charge
from .idempotency import once
from .models import LocalCustomer, LocalInvoice, LocalInvoiceItem, LocalSubscription, new_id


def line(
    description: str,
    amount: int,
    proration: bool = False,
    plan_id: str | None = None,
    discount: bool = False,
) -> dict[str, Any]:
    """Make an invoice line; `plan` marks the lines charging a plan's period (and its discount)."""
    made: dict[str, Any] = {"description": description, "amount": amount, "proration": proration}
    if plan_id is not None:
        made["plan"] = plan_id
    if discount:
        made["discount"] = True
    return made


def plan_lines(plan: PlanLike, coupon: CouponLike | None) -> list[dict[str, Any]]:
    """Return the lines charging one period of `plan`, and the coupon's discount on it."""
    price = plan.price_cents or 0
    lines = [line(f"1 × {plan.name}", price, plan_id=plan.id)]
    if coupon is not None:
        lines.append(
            line(
                f"{coupon.code} ({coupon.percent_off}% off)",
                -coupon_discount(price, coupon),
                plan_id=plan.id,
                discount=True,
            )
        )
    return lines


def pay_on_session(invoice: LocalInvoice, subscription: LocalSubscription) -> None:
    """Pay an invoice with the customer present; a decline voids it and raises PaymentDeclined.

    A payment that needs 3-D Secure leaves the invoice open (`requires_action`).
    """
    pay(invoice, subscription, on_session=True)
    if invoice.payment_status == "requires_payment_method":
        void(invoice)
        db.session.flush()
        raise PaymentDeclined(invoice.decline_code or "card_declined")


def add_invoice(
    subscription: LocalSubscription,
    reason: str,
    lines: list[dict[str, Any]],
    now: datetime,
) -> LocalInvoice:
    """Add a draft invoice with these lines and make it the subscription's latest."""
    total = sum(item["amount"] for item in lines)
    invoice = LocalInvoice(
        id=new_id("in"),
        subscription_id=subscription.id,
        customer_id=subscription.customer_id,
        billing_reason=reason,
        total=total,
        discount=-sum(item["amount"] for item in lines if item.get("discount")),
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


def pay(invoice: LocalInvoice, subscription: LocalSubscription, on_session: bool) -> None:
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
    invoice.payment_intent_id = new_id("pi")
    invoice.client_secret = f"{invoice.payment_intent_id}_secret_{secrets.token_hex(8)}"
    invoice.status = "open"
    charge(invoice, subscription, on_session)


def void(invoice: LocalInvoice) -> None:
    """Void an open invoice, giving back the credit balance it had used (as Stripe does)."""
    customer = db.session.get(LocalCustomer, invoice.customer_id)
    customer.balance_cents += invoice.amount_due - invoice.total
    invoice.status = "void"
    invoice.payment_status = "canceled"


def latest_invoice(subscription: LocalSubscription) -> LocalInvoice | None:
    """Return the subscription's latest invoice, if any."""
    if subscription.latest_invoice_id is None:
        return None
    return db.session.get(LocalInvoice, subscription.latest_invoice_id)


def pending_items(subscription: LocalSubscription) -> list[LocalInvoiceItem]:
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


def list_invoices(customer_id: str) -> list[InvoiceSummary]:
    """Return the customer's finalized invoices, newest first, numbered in order."""
    invoices = db.session.scalars(
        sa.select(LocalInvoice)
        .where(LocalInvoice.customer_id == customer_id, LocalInvoice.status != "draft")
        .order_by(LocalInvoice.number.desc())
    ).all()
    prefix = customer_id.split("_", 1)[-1][:8].upper()
    return [_summary(invoice, f"{prefix}-{invoice.number:04d}") for invoice in invoices]


def _summary(invoice: LocalInvoice, number: str) -> InvoiceSummary:
    """Show a local invoice as GET /api/account/invoices does."""
    plans = [item["plan"] for item in invoice.lines if item.get("plan")]
    return InvoiceSummary(
        id=invoice.id,
        number=number,
        status=invoice.status,
        total=invoice.total,
        amount_due=invoice.amount_due,
        amount_paid=invoice.amount_paid,
        # Stripe keeps what is owed on an uncollectible invoice; paid and void owe nothing.
        amount_remaining=invoice.amount_due - invoice.amount_paid
        if invoice.status in ("open", "uncollectible")
        else 0,
        discount=invoice.discount,
        currency=invoice.currency,
        created_at=invoice.created_at,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        plan_id=plans[0] if plans else None,
        hosted_invoice_url=None,
        amount_refunded=invoice.amount_refunded,
    )


def refund_invoice(
    invoice_id: str, amount_cents: int | None, reason: str | None, idempotency_key: str
) -> int:
    """Refund all or part of a paid invoice's payment, once per key; return the total refunded."""

    def run() -> dict[str, Any]:
        invoice = db.session.get(LocalInvoice, invoice_id)
        if invoice is None or invoice.status != "paid" or invoice.amount_paid == 0:
            raise GatewayError(f"invoice {invoice_id} has no payment to refund")
        left = invoice.amount_paid - invoice.amount_refunded
        amount = left if amount_cents is None else amount_cents
        if not 0 < amount <= left:
            raise GatewayError(
                f"invoice {invoice_id} has {left} cents left to refund, not {amount}"
            )
        invoice.amount_refunded += amount
        db.session.flush()
        return {"amount_refunded": invoice.amount_refunded}

    params = {"invoice": invoice_id, "amount": amount_cents, "reason": reason}
    # The refund so far is part of the intent: the same refund retried finds the first, and a
    # second refund of the same amount later is a refund of its own.
    existing = db.session.get(LocalInvoice, invoice_id)
    before = existing.amount_refunded if existing is not None else 0
    key = f"{idempotency_key}:after:{before}"
    return once(key, "refund", invoice_id, params, run)["amount_refunded"]
