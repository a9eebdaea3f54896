"""The local gateway's own records: the provider's side of the books, kept in our database.

Keeping them in the database (not in process memory) lets every gunicorn worker and instance
see the same customers, subscriptions and payments, as they would at Stripe. The tables are
part of the schema whichever provider runs: `payments.register_payments` declares them when the
app is built, so the migrations and `db.create_all()` see them.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ...extensions import db
from ...models.types import UTCDateTime


def new_id(prefix: str) -> str:
    """Return a Stripe-style id for a new record, such as `pi_3f9c…`."""
    return f"{prefix}_{secrets.token_hex(12)}"


class LocalCustomer(db.Model):
    """A customer at the local provider; `balance_cents` below zero is credit."""

    __tablename__ = "local_customers"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_public_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    default_payment_method_id: Mapped[str | None] = mapped_column(sa.String(64))
    balance_cents: Mapped[int] = mapped_column(sa.Integer, default=0)
    # How many of the customer's invoices were finalized: the last invoice number given.
    invoice_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LocalCustomer {self.id} balance={self.balance_cents}>"


class LocalPaymentMethod(db.Model):
    """A card attached to a local customer, with the behaviour of its Stripe test card."""

    __tablename__ = "local_payment_methods"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("local_customers.id"), index=True)
    brand: Mapped[str] = mapped_column(sa.String(20))
    last4: Mapped[str] = mapped_column(sa.String(4))
    exp_month: Mapped[int] = mapped_column(sa.Integer)
    exp_year: Mapped[int] = mapped_column(sa.Integer)
    # succeed | decline_on_charge | authenticate
    behaviour: Mapped[str] = mapped_column(sa.String(30))
    decline_code: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LocalPaymentMethod {self.id} {self.brand} {self.last4}>"


class LocalSubscription(db.Model):
    """A subscription at the local provider (Stripe's vocabulary: active, past_due, ...)."""

    __tablename__ = "local_subscriptions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("local_customers.id"), index=True)
    plan_id: Mapped[str] = mapped_column(sa.String(64))
    # A plan swap waiting for its invoice to be paid (Stripe's `pending_update`).
    pending_plan_id: Mapped[str | None] = mapped_column(sa.String(64))
    pending_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(30))
    billing_anchor: Mapped[datetime] = mapped_column(UTCDateTime)
    current_period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    current_period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The end of a trial (Stripe's `trial_end`); the first paid period starts there.
    trial_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A coupon waiting for the first paid invoice (given at the start of a trial).
    coupon_code: Mapped[str | None] = mapped_column(sa.String(40))
    # Stripe's `pending_setup_intent`: the card saved at a trial's start, when it needs the
    # customer (3-D Secure) to be saved. status: requires_action | succeeded | canceled.
    setup_intent_id: Mapped[str | None] = mapped_column(sa.String(64))
    setup_client_secret: Mapped[str | None] = mapped_column(sa.String(255))
    setup_status: Mapped[str | None] = mapped_column(sa.String(40))
    default_payment_method_id: Mapped[str | None] = mapped_column(sa.String(64))
    latest_invoice_id: Mapped[str | None] = mapped_column(sa.String(64))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LocalSubscription {self.id} {self.plan_id} {self.status}>"


class LocalInvoice(db.Model):
    """An invoice of a local subscription, and the payment intent that pays it."""

    __tablename__ = "local_invoices"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        sa.ForeignKey("local_subscriptions.id"), index=True
    )
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    billing_reason: Mapped[str] = mapped_column(sa.String(40))
    # Stripe's meanings: `total` after discounts, `amount_due` what is asked of the card once
    # the customer's credit balance is applied, `discount` what the coupon took off.
    total: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    discount: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    amount_due: Mapped[int] = mapped_column(sa.Integer)
    amount_paid: Mapped[int] = mapped_column(sa.Integer, default=0)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # draft | open | paid | void | uncollectible
    status: Mapped[str] = mapped_column(sa.String(20))
    # The customer's invoice number, given when the invoice is finalized (1, 2, …): Stripe
    # numbers a customer's invoices in the order they are finalized.
    number: Mapped[int | None] = mapped_column(sa.Integer)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    payment_intent_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    # succeeded | requires_action | requires_payment_method | None (nothing to pay)
    payment_status: Mapped[str | None] = mapped_column(sa.String(40))
    client_secret: Mapped[str | None] = mapped_column(sa.String(255))
    decline_code: Mapped[str | None] = mapped_column(sa.String(40))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    # What was refunded of its payment (cents).
    amount_refunded: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # A dispute (chargeback) opened on its payment: Stripe's dispute status (needs_response,
    # won, lost, ...), None when undisputed.
    dispute_status: Mapped[str | None] = mapped_column(sa.String(30))
    # Dunning, as Stripe's invoice fields: charges tried so far and when the next one runs.
    attempt_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    next_payment_attempt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LocalInvoice {self.id} {self.amount_due} {self.status}>"


class LocalInvoiceItem(db.Model):
    """A pending invoice item: a proration left for the subscription's next invoice."""

    __tablename__ = "local_invoice_items"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        sa.ForeignKey("local_subscriptions.id"), index=True
    )
    description: Mapped[str] = mapped_column(sa.String(200))
    amount: Mapped[int] = mapped_column(sa.Integer)
    # The invoice that billed it; None while it waits for the next one.
    invoice_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LocalInvoiceItem {self.id} {self.amount}>"


class LocalIdempotencyKey(db.Model):
    """A mutating request the local provider answered, kept as Stripe keeps idempotency keys."""

    __tablename__ = "local_idempotency_keys"

    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    # A digest of the request's operation and parameters: the same key with others is refused.
    request_digest: Mapped[str] = mapped_column(sa.String(64))
    response: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LocalIdempotencyKey {self.key}>"
