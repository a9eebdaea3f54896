"""Plans, coupons, subscriptions and processed webhook events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime

# Statuses that hold the user's one subscription slot (a new create is a 409).
LIVE_STATUSES = ("ACTIVE", "TRIALING", "PAST_DUE", "INCOMPLETE")


class Plan(db.Model):
    """A subscription plan, written by `flask seed-plans`."""

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(20))
    name: Mapped[str] = mapped_column(sa.String(100))
    # Minor units (cents); None for "contact sales".
    price_cents: Mapped[int | None] = mapped_column(sa.Integer)
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    interval: Mapped[str] = mapped_column(sa.String(10))
    features: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    self_serve: Mapped[bool] = mapped_column(default=False)
    rank: Mapped[int] = mapped_column(sa.Integer)
    # How long a trial of this plan lasts (0: the plan has no trial).
    trial_days: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    def __repr__(self) -> str:
        return f"<Plan {self.id} {self.price_cents} {self.currency}/{self.interval}>"


class Coupon(db.Model):
    """A discount applied to a subscription's first invoice."""

    __tablename__ = "coupons"

    code: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    percent_off: Mapped[int] = mapped_column(sa.Integer)
    duration: Mapped[str] = mapped_column(sa.String(10), default="once")
    active: Mapped[bool] = mapped_column(default=True)

    def __repr__(self) -> str:
        return f"<Coupon {self.code} {self.percent_off}% {self.duration}>"


class Subscription(db.Model):
    """A user's paid subscription, mirrored from the payment provider."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[str] = mapped_column(sa.ForeignKey("plans.id"))
    status: Mapped[str] = mapped_column(sa.String(20))
    current_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trial_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    coupon_code: Mapped[str | None] = mapped_column(sa.String(40))

    provider_subscription_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    payment_method_id: Mapped[str | None] = mapped_column(sa.String(64))
    payment_method_type: Mapped[str | None] = mapped_column(sa.String(20))
    card_brand: Mapped[str | None] = mapped_column(sa.String(20))
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    card_exp_month: Mapped[int | None] = mapped_column(sa.Integer)
    card_exp_year: Mapped[int | None] = mapped_column(sa.Integer)
    # The payment awaiting customer action, if any (strong customer authentication).
    client_secret: Mapped[str | None] = mapped_column(sa.String(255))
    next_action: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # What is owed on the latest invoice, while it is open (GET subscription's latestPayment):
    # its payment's status (requires_action, requires_payment_method, processing), the amount
    # and Stripe's hosted invoice page; all None when nothing is owed.
    latest_payment_status: Mapped[str | None] = mapped_column(sa.String(40))
    latest_payment_cents: Mapped[int | None] = mapped_column(sa.Integer)
    hosted_invoice_url: Mapped[str | None] = mapped_column(sa.String(500))
    # A plan change waiting for its payment (Stripe's `pending_update`) and when it lapses.
    pending_plan_id: Mapped[str | None] = mapped_column(sa.String(64))
    pending_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the next invoice will charge, as the provider last reported it (reads show it
    # without asking the provider).
    next_invoice_amount_cents: Mapped[int | None] = mapped_column(sa.Integer)
    # Bumped by every change made under the row lock; part of each change's idempotency key.
    version: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # When the provider next retries a failed renewal (local dunning); None when none is due.
    next_payment_attempt: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # When the provider first started it (trialing, paid or past due): a user with any such
    # subscription has had their one trial or a paid subscription.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the "your trial ends in 3 days" notice was sent (once per subscription).
    trial_notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    plan: Mapped[Plan] = relationship()

    __table_args__ = (
        # One live subscription per user, enforced by the database: concurrent creates race
        # on this index, and exactly one wins.
        sa.Index(
            "uq_subscriptions_one_live_per_user",
            "user_id",
            unique=True,
            sqlite_where=sa.text("status IN ('ACTIVE','TRIALING','PAST_DUE','INCOMPLETE')"),
            postgresql_where=sa.text("status IN ('ACTIVE','TRIALING','PAST_DUE','INCOMPLETE')"),
        ),
    )

    @property
    def requires_action(self) -> bool:
        """Tell whether the latest payment waits for the customer (3-D Secure)."""
        return self.next_action is not None

    def __repr__(self) -> str:
        return f"<Subscription {self.public_id} {self.plan_id} {self.status}>"


class CouponRedemption(db.Model):
    """A coupon a user has used; first-subscription coupons are refused a second time."""

    __tablename__ = "coupon_redemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    coupon_code: Mapped[str] = mapped_column(sa.String(40))
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("user_id", "coupon_code"),)

    def __repr__(self) -> str:
        return f"<CouponRedemption {self.user_id} {self.coupon_code}>"


class UnreconciledSubscription(db.Model):
    """A provider subscription with no row here that could not be adopted: the operator's list.

    Written when a webhook names a subscription this service does not know (a create whose
    worker died after the provider charged, say) and its customer's user already has a live
    subscription, or no user can be found. Nothing is dropped silently.
    """

    __tablename__ = "unreconciled_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_subscription_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(sa.String(64))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str | None] = mapped_column(sa.String(20))
    # user_has_live_subscription | unknown_customer | ended | provider_error
    reason: Mapped[str] = mapped_column(sa.String(40))
    event_id: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<UnreconciledSubscription {self.provider_subscription_id} {self.reason}>"


class WebhookEvent(db.Model):
    """A provider event already processed; its id's uniqueness makes delivery idempotent."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<WebhookEvent {self.id} {self.type}>"
