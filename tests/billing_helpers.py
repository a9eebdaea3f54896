"""Helpers shared by the billing tests."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import Plan
from smartcv_account.payments.local.models import LocalInvoice
from smartcv_account.services import renewals

SUBSCRIPTION_URL = "/api/account/subscription"
WEBHOOK_URL = "/api/webhooks/stripe"


def at(*args) -> None:
    """Move the pinned clock and run what fell due, as cron (`advance-subscriptions`) does."""
    clock.freeze(datetime(*args, tzinfo=UTC))
    renewals.run_due_work()


def subscribe(client, plan_id="plan_premium_monthly", payment_method="pm_card_visa", **extra):
    """POST a subscription create and return the response."""
    body = {"planId": plan_id, "paymentMethodId": payment_method, **extra}
    return client.post(SUBSCRIPTION_URL, json=body)


def change(client, action, **extra):
    """PUT a subscription action and return the response."""
    return client.put(SUBSCRIPTION_URL, json={"action": action, **extra})


def deliver(client, body: bytes, signature: str | None):
    """POST a webhook event body as Stripe does (without a signature when it is None)."""
    headers = {"Stripe-Signature": signature} if signature is not None else {}
    return client.post(
        WEBHOOK_URL, data=body, content_type="application/json; charset=utf-8", headers=headers
    )


def paid_invoices() -> list[LocalInvoice]:
    """Every invoice the local provider collected money for, oldest first."""
    return list(
        db.session.scalars(
            sa.select(LocalInvoice)
            .where(LocalInvoice.status == "paid", LocalInvoice.amount_paid > 0)
            .order_by(LocalInvoice.created_at, LocalInvoice.id)
        )
    )


def add_monthly_plan(plan_id="plan_test_pro_monthly", price_cents=4999, rank=2) -> Plan:
    """Add a self-serve monthly plan above Premium Monthly, for same-interval swaps."""
    for plan in db.session.scalars(sa.select(Plan).where(Plan.rank >= rank)):
        plan.rank += 1
    plan = Plan(
        id=plan_id,
        type="PREMIUM",
        name="Test Pro Monthly",
        price_cents=price_cents,
        currency="USD",
        interval="month",
        features=[],
        self_serve=True,
        rank=rank,
    )
    db.session.add(plan)
    db.session.commit()
    return plan


def authenticate(gateway, invoice_or_intent_id: str, succeed: bool = True) -> bytes:
    """Finish (or fail) a 3-D Secure challenge at the local provider and commit its books.

    The gateway only flushes (the caller owns the transaction), as a service would commit.
    """
    body = gateway.authenticate_payment(invoice_or_intent_id, succeed=succeed)
    db.session.commit()
    return body
