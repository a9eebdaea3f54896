"""Creating a subscription: a placeholder holds the slot, then the provider takes the payment."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ... import clock
from ...errors import ApiError, field_error
from ...extensions import db
from ...models import (
    Coupon,
    CouponRedemption,
    Plan,
    Subscription,
    User,
)
from ...payments import get_gateway
from ...payments.base import (
    GatewayError,
)
from ...principal import Principal
from .. import activity
from ..identity import new_public_id
from ..locking import lock_user
from ..plans import get_plan
from .provider_state import apply_provider_state, gateway_error, live_subscription

# Coupons that only a customer's first paid subscription may use.
FIRST_SUBSCRIPTION_COUPONS = ("WELCOME20",)


@dataclass(frozen=True, slots=True)
class SubscriptionCreated:
    """What POST /api/account/subscription reports (built before the commit)."""

    public_id: str
    status: str
    client_secret: str | None
    next_action: dict | None

    @property
    def requires_action(self) -> bool:
        """Tell whether the first payment waits for the customer (3-D Secure)."""
        return self.next_action is not None


def create_subscription(
    principal: Principal, plan_id: str, payment_method_id: str, coupon_code: str | None
) -> SubscriptionCreated:
    """Subscribe the user to a self-serve plan and take the first payment.

    A placeholder row is committed first: the database's one-live-subscription-per-user index
    lets exactly one of several concurrent creates through, before any money moves.
    """
    user = lock_user(principal)
    plan = _self_serve_plan(plan_id)
    coupon = _coupon(coupon_code, user) if coupon_code is not None else None
    live_subscription(user)  # a period that ended may free the slot (a cancel taking effect)
    now = clock.now()
    subscription = Subscription(
        public_id=new_public_id("sub"),
        user_id=user.id,
        plan_id=plan.id,
        status="INCOMPLETE",
        cancel_at_period_end=False,
        coupon_code=coupon.code if coupon else None,
        created_at=now,
        updated_at=now,
    )
    db.session.add(subscription)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(
            "SUBSCRIPTION_ALREADY_EXISTS",
            "You already have a subscription; change it instead of creating another.",
        ) from None

    # Locked again, for the provider's call and until its answer is committed: a deletion that
    # committed after the placeholder (and canceled it) leaves nothing to create (401), and one
    # that comes later waits, then finds the provider's subscription and cancels it.
    try:
        user = lock_user(principal)
    except ApiError:
        _release_placeholder(subscription.id)
        raise
    gateway = get_gateway()
    try:
        user_public_id = user.public_id  # read once: the local gateway's commits expire `user`
        customer_id = gateway.ensure_customer(user_public_id, user.email, user.billing_customer_id)
        user.billing_customer_id = customer_id
        card = gateway.attach_payment_method(customer_id, payment_method_id)
        provider = gateway.create_subscription(
            customer_id,
            plan,
            card,
            coupon,
            idempotency_key=subscription.public_id,
            user_public_id=user_public_id,
        )
    except GatewayError as error:
        # Keep what the provider kept (its customer, an attached card), as Stripe keeps them:
        # a retry then reuses the customer. Only the slot is given back.
        db.session.delete(subscription)
        db.session.commit()
        raise gateway_error(error) from None
    apply_provider_state(subscription, provider)
    user.current_subscription = subscription
    if coupon is not None:
        db.session.add(
            CouponRedemption(user_id=user.id, coupon_code=coupon.code, redeemed_at=clock.now())
        )
    activity.record(
        subscription.user_id, "subscription_created", {"subscriptionId": subscription.public_id}
    )
    created = SubscriptionCreated(
        subscription.public_id,
        subscription.status,
        subscription.client_secret,
        subscription.next_action,
    )
    return created


def _release_placeholder(subscription_id: int) -> None:
    """Give back the slot of a create that ends before the provider was called."""
    db.session.rollback()
    db.session.execute(
        sa.delete(Subscription).where(
            Subscription.id == subscription_id,
            Subscription.status == "INCOMPLETE",
            Subscription.provider_subscription_id.is_(None),
        )
    )
    db.session.commit()


def _self_serve_plan(plan_id: str) -> Plan:
    """Return a plan users may buy themselves, or raise PLAN_NOT_FOUND."""
    plan = get_plan(plan_id)
    if plan is None or not plan.self_serve:
        raise field_error(
            "PLAN_NOT_FOUND", f"There is no self-serve plan with id {plan_id!r}.", "planId"
        )
    return plan


def _coupon(code: str, user: User) -> Coupon:
    """Return an active coupon the user may still use, or raise INVALID_COUPON."""
    coupon = db.session.get(Coupon, code.strip().upper())
    if coupon is None or not coupon.active:
        raise field_error("INVALID_COUPON", f"The coupon {code!r} is not valid.", "couponCode")
    if coupon.code in FIRST_SUBSCRIPTION_COUPONS and db.session.scalar(
        sa.select(CouponRedemption.id).where(
            CouponRedemption.user_id == user.id, CouponRedemption.coupon_code == coupon.code
        )
    ):
        raise field_error(
            "INVALID_COUPON",
            f"The coupon {coupon.code} is for a first subscription and was already used.",
            "couponCode",
            reason="already_redeemed",
        )
    return coupon
