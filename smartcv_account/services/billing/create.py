"""Creating a subscription: a placeholder holds the slot, then the provider takes the payment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ... import clock
from ...errors import ApiError, field_error
from ...extensions import db
from ...models import (
    LIVE_STATUSES,
    Coupon,
    CouponRedemption,
    Plan,
    Subscription,
    User,
)
from ...payments import get_gateway
from ...payments.base import ChangePreview, GatewayError
from ...principal import Principal
from ...rules.entitlement import status_at
from .. import activity
from ..identity import new_public_id
from ..locking import load_user, lock_user
from ..plans import get_plan
from .provider_state import apply_provider_state, call_gateway, gateway_error, live_subscription

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
    principal: Principal,
    plan_id: str,
    payment_method_id: str | None,
    coupon_code: str | None,
    trial: bool = False,
) -> SubscriptionCreated:
    """Subscribe the user to a self-serve plan and take the first payment, or start a trial.

    A placeholder row is committed first: the database's one-live-subscription-per-user index
    lets exactly one of several concurrent creates through, before any money moves.
    """
    user = lock_user(principal)
    plan = _self_serve_plan(plan_id)
    coupon = _coupon(coupon_code, user) if coupon_code is not None else None
    # A period that ended may free the slot (a cancel taking effect).
    if live_subscription(user) is not None and trial:
        raise _already_exists()  # before TRIAL_NOT_AVAILABLE, as without a trial
    trial_days = check_trial(user, plan) if trial else 0
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
        raise _already_exists() from None

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
        key = create_key(user, plan, coupon, trial_days, payment_method_id)
        customer_id = gateway.ensure_customer(user_public_id, user.email, user.billing_customer_id)
        user.billing_customer_id = customer_id
        card = None
        if payment_method_id is not None:
            card = gateway.attach_payment_method(customer_id, payment_method_id)
        provider = gateway.create_subscription(
            customer_id,
            plan,
            card,
            coupon,
            idempotency_key=key,
            user_public_id=user_public_id,
            trial_days=trial_days,
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
    details = {"subscriptionId": subscription.public_id}
    activity.record(subscription.user_id, "subscription_created", details)
    if subscription.status == "TRIALING":
        activity.record(
            subscription.user_id,
            "trial_started",
            {**details, "planId": plan.id, "trialEnd": clock.isoformat(subscription.trial_end)},
        )
    created = SubscriptionCreated(
        subscription.public_id,
        subscription.status,
        subscription.client_secret,
        subscription.next_action,
    )
    return created


def create_key(
    user: User, plan: Plan, coupon: Coupon | None, trial_days: int, payment_method_id: str | None
) -> str:
    """Return the provider's idempotency key of this create: derived from the intent.

    The same create retried (after a timeout or a 503, with or without an `Idempotency-Key`)
    sends the same key, so the provider answers with what it did the first time instead of
    making a second subscription: the user, how many subscriptions of theirs reached the
    provider before (a failed attempt's placeholder is removed and does not count), the plan,
    coupon, trial and the card the client sent. A later subscription counts one more.
    """
    before = db.session.scalar(
        sa.select(sa.func.count(Subscription.id)).where(
            Subscription.user_id == user.id, Subscription.provider_subscription_id.is_not(None)
        )
    )
    intent = "\x1f".join(
        (plan.id, coupon.code if coupon else "", str(trial_days), payment_method_id or "")
    )
    digest = hashlib.sha256(intent.encode()).hexdigest()[:16]
    return f"create:{user.public_id}:{before}:{digest}"


def preview_create(
    principal: Principal, plan_id: str, trial: bool, coupon_code: str | None
) -> ChangePreview:
    """Return what the same create would bill now and next, refusing what it would refuse.

    A read: it writes nothing and brings nothing up to now.
    """
    user = load_user(principal.id)
    plan = _self_serve_plan(plan_id)
    coupon = _coupon(coupon_code, user) if coupon_code is not None else None
    current = user.current_subscription
    if current is not None and status_at(current, clock.now()) in LIVE_STATUSES:
        raise _already_exists()
    trial_days = check_trial(user, plan) if trial else 0
    return call_gateway(
        get_gateway().preview_create, user.billing_customer_id, plan, coupon, trial_days
    )


def check_trial(user: User, plan: Plan) -> int:
    """Return the plan's trial length, or refuse a trial (one per user, ever; plans with one).

    A user who ever had a subscription the provider started (a trial, a paid or a past-due
    one, whatever became of it) has had their trial or paid already.
    """
    if not plan.trial_days:
        raise field_error(
            "TRIAL_NOT_AVAILABLE", f"{plan.name} has no trial; subscribe without one.", "trial"
        )
    if _had_a_subscription(user):
        raise field_error(
            "TRIAL_NOT_AVAILABLE",
            "You have already had a trial or a paid subscription; subscribe without a trial.",
            "trial",
        )
    return plan.trial_days


def _had_a_subscription(user: User) -> bool:
    """Tell whether the provider ever started a subscription of the user (trial or paid)."""
    had = db.session.scalar(
        sa.select(Subscription.id)
        .where(Subscription.user_id == user.id, Subscription.started_at.is_not(None))
        .limit(1)
    )
    return had is not None


def _already_exists() -> ApiError:
    """The 409 for a create while a live subscription exists."""
    return ApiError(
        "SUBSCRIPTION_ALREADY_EXISTS",
        "You already have a subscription; change it instead of creating another.",
    )


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
    if coupon.code in FIRST_SUBSCRIPTION_COUPONS and (
        db.session.scalar(
            sa.select(CouponRedemption.id).where(
                CouponRedemption.user_id == user.id, CouponRedemption.coupon_code == coupon.code
            )
        )
        or _had_a_subscription(user)
    ):
        raise field_error(
            "INVALID_COUPON",
            f"The coupon {coupon.code} is for a first subscription and was already used.",
            "couponCode",
            reason="already_redeemed",
        )
    return coupon
