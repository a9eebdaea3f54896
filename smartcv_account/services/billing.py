"""Subscriptions: create, change, cancel, renew, and keep in step with the payment provider.

Money moves only through the gateway (`payments/`); this module decides what may happen and
mirrors the provider's answer into our `subscriptions` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import clock
from ..catalogue import FREE_PLAN_ID
from ..errors import ApiError, field_error
from ..extensions import db
from ..models import LIVE_STATUSES, Coupon, Plan, Subscription, User, WebhookEvent
from ..payments import get_gateway
from ..payments.base import (
    GatewayError,
    GatewayUnavailable,
    InvalidSignature,
    PaymentDeclined,
    ProviderSubscription,
    UnknownPaymentMethod,
)
from ..principal import Principal, PrincipalSubscription
from .accounts import load_user, new_public_id
from .plans import PlanSnapshot, plan_for_display

ACTIONS = ("upgrade", "downgrade", "cancel", "reactivate", "update_payment_method")
# A create's placeholder row older than this never reached the provider: its request died.
PLACEHOLDER_TIMEOUT = timedelta(minutes=10)
# Stripe expires a subscription whose first payment was not completed after 23 hours.
INCOMPLETE_EXPIRY = timedelta(hours=23)


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What PUT /api/account/subscription reports."""

    subscription_id: str
    status: str
    proration_amount: int
    effective_date: datetime | None


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


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """What GET /api/account/subscription shows (the free plan when nothing is paid)."""

    id: str | None
    type: str
    status: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None
    plan: PlanSnapshot | None
    usage: dict
    payment_method: dict | None
    next_billing: dict | None


# --- reading ------------------------------------------------------------------------------------


def subscription_view(user: Principal) -> SubscriptionView:
    """Assemble the user's subscription, plan, usage, card and next bill.

    The plan comes from the in-process snapshot (services/plans.py): showing it costs no query.
    """
    from .usage import current_usage

    subscription = live_subscription(user)
    if subscription is None:
        return SubscriptionView(
            id=None,
            type="FREE",
            status="ACTIVE",
            current_period_start=None,
            current_period_end=None,
            cancel_at_period_end=False,
            trial_end=None,
            plan=plan_for_display(FREE_PLAN_ID),
            usage=current_usage(user),
            payment_method=None,
            next_billing=None,
        )
    plan = plan_for_display(subscription.plan_id)
    card = None
    if subscription.card_last4 is not None:
        card = {
            "type": subscription.payment_method_type,
            "last4": subscription.card_last4,
            "brand": subscription.card_brand,
            "expiry_month": subscription.card_exp_month,
            "expiry_year": subscription.card_exp_year,
        }
    billed = (
        subscription.provider_subscription_id is not None
        and subscription.status in ("ACTIVE", "TRIALING", "PAST_DUE")
        and not subscription.cancel_at_period_end
    )
    next_billing = None
    if billed:
        next_billing = {
            "date": subscription.current_period_end,
            "amount_cents": plan.price_cents,
            "currency": plan.currency,
        }
    return SubscriptionView(
        id=subscription.public_id,
        type=plan.type,
        status=subscription.status,
        current_period_start=subscription.current_period_start,
        current_period_end=subscription.current_period_end,
        cancel_at_period_end=subscription.cancel_at_period_end,
        trial_end=subscription.trial_end,
        plan=plan,
        usage=current_usage(user),
        payment_method=card,
        next_billing=next_billing,
    )


def get_plan(plan_id: str) -> Plan | None:
    """Return a plan by id."""
    return db.session.get(Plan, plan_id)


def live_subscription(user: User | Principal) -> Subscription | PrincipalSubscription | None:
    """Return the user's subscription unless it has ended, after bringing it up to now."""
    subscription = user.current_subscription
    if subscription is None or subscription.status not in LIVE_STATUSES:
        return None
    if is_due(subscription):
        subscription = load_user(user.id).current_subscription
        refresh_if_due(subscription)
    return subscription if subscription.status in LIVE_STATUSES else None


def is_due(subscription) -> bool:
    """Tell whether the provider has work for this subscription: a period over, or expiry.

    An INCOMPLETE subscription is due once the provider would have expired it.
    """
    if subscription.provider_subscription_id is None or subscription.status not in LIVE_STATUSES:
        return False
    now = clock.now()
    end = subscription.current_period_end
    if end is not None and end <= now:
        return True
    return (
        subscription.status == "INCOMPLETE" and subscription.created_at <= now - INCOMPLETE_EXPIRY
    )


def refresh_if_due(subscription: Subscription) -> Subscription:
    """Run renewals or a pending cancel whose time has come, so no read shows an ended period."""
    if is_due(subscription):
        provider = _call(get_gateway().advance, subscription.provider_subscription_id)
        _apply(subscription, provider)
        db.session.commit()
    return subscription


# --- creating -----------------------------------------------------------------------------------


def create_subscription(
    principal: Principal, plan_id: str, payment_method_id: str, coupon_code: str | None
) -> SubscriptionCreated:
    """Subscribe the user to a self-serve plan and take the first payment.

    A placeholder row is committed first: the database's one-live-subscription-per-user index
    lets exactly one of several concurrent creates through, before any money moves.
    """
    user = load_user(principal.id)
    plan = _self_serve_plan(plan_id)
    coupon = _coupon(coupon_code) if coupon_code is not None else None
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

    gateway = get_gateway()
    try:
        customer_id = gateway.ensure_customer(user.public_id, user.email, user.billing_customer_id)
        user.billing_customer_id = customer_id
        card = gateway.attach_payment_method(customer_id, payment_method_id)
        provider = gateway.create_subscription(
            customer_id, plan, card, coupon, idempotency_key=subscription.public_id
        )
    except GatewayError as error:
        db.session.rollback()
        db.session.delete(subscription)
        db.session.commit()
        raise _gateway_error(error) from None
    _apply(subscription, provider)
    user.current_subscription = subscription
    created = SubscriptionCreated(
        subscription.public_id,
        subscription.status,
        subscription.client_secret,
        subscription.next_action,
    )
    db.session.commit()
    return created


def _self_serve_plan(plan_id: str) -> Plan:
    """Return a plan users may buy themselves, or raise PLAN_NOT_FOUND."""
    plan = get_plan(plan_id)
    if plan is None or not plan.self_serve:
        raise field_error(
            "PLAN_NOT_FOUND", f"There is no self-serve plan with id {plan_id!r}.", "planId"
        )
    return plan


def _coupon(code: str) -> Coupon:
    """Return an active coupon by code (case-insensitive), or raise INVALID_COUPON."""
    coupon = db.session.get(Coupon, code.strip().upper())
    if coupon is None or not coupon.active:
        raise field_error("INVALID_COUPON", f"The coupon {code!r} is not valid.", "couponCode")
    return coupon


# --- changing -----------------------------------------------------------------------------------


def change_subscription(
    principal: Principal,
    action: str,
    plan_id: str | None = None,
    proration_behavior: str = "create_prorations",
    payment_method_id: str | None = None,
) -> ChangeResult:
    """Apply one of the PUT actions to the user's paid subscription."""
    user = load_user(principal.id)
    subscription = live_subscription(user)
    if subscription is None:
        raise ApiError("SUBSCRIPTION_NOT_FOUND", "You have no subscription to change.")
    if subscription.provider_subscription_id is None:
        raise ApiError(
            "INVALID_PLAN_CHANGE",
            "This plan was arranged with SmartCV; contact support to change it.",
        )
    handler = {
        "upgrade": _change_plan,
        "downgrade": _change_plan,
        "cancel": _cancel,
        "reactivate": _reactivate,
        "update_payment_method": _update_payment_method,
    }[action]
    result = handler(
        subscription,
        action=action,
        plan_id=plan_id,
        proration_behavior=proration_behavior,
        payment_method_id=payment_method_id,
    )
    db.session.commit()
    return result


def _change_plan(subscription: Subscription, *, action, plan_id, proration_behavior, **_):
    """Upgrade or downgrade now, prorating as asked."""
    target = get_plan(plan_id)
    if target is None or (not target.self_serve and target.id != FREE_PLAN_ID):
        raise field_error(
            "PLAN_NOT_FOUND", f"There is no self-serve plan with id {plan_id!r}.", "planId"
        )
    current = subscription.plan
    if target.id == FREE_PLAN_ID:
        raise _invalid_change("To move to the free plan, cancel the subscription.")
    if target.id == current.id:
        raise _invalid_change(f"You are already on {current.name}.")
    if (action == "upgrade") != (target.rank > current.rank):
        word = "higher" if action == "upgrade" else "lower"
        raise _invalid_change(f"{target.name} is not a {word} plan than {current.name}.")
    if subscription.status not in ("ACTIVE", "TRIALING"):
        raise _invalid_change("Settle the outstanding payment before changing plans.")
    change = _call(
        get_gateway().change_plan,
        subscription.provider_subscription_id,
        target,
        proration_behavior,
        f"{subscription.public_id}:{target.id}:{int(clock.now().timestamp())}",
    )
    _apply(subscription, change.subscription)
    return ChangeResult(
        subscription.public_id, subscription.status, change.proration_cents, clock.now()
    )


def _cancel(subscription: Subscription, **_):
    """Cancel at period end (an unpaid INCOMPLETE one at once)."""
    gateway = get_gateway()
    if subscription.status == "INCOMPLETE":
        # Nothing was paid: abandon it now rather than keep an unpaid plan to period end.
        _apply(subscription, _call(gateway.cancel_now, subscription.provider_subscription_id))
        return ChangeResult(subscription.public_id, subscription.status, 0, clock.now())
    if not subscription.cancel_at_period_end:
        provider = _call(
            gateway.set_cancel_at_period_end, subscription.provider_subscription_id, True
        )
        _apply(subscription, provider)
    return ChangeResult(
        subscription.public_id, subscription.status, 0, subscription.current_period_end
    )


def _reactivate(subscription: Subscription, **_):
    """Withdraw a pending cancel."""
    if not subscription.cancel_at_period_end:
        raise _invalid_change("There is no pending cancellation to undo.")
    provider = _call(
        get_gateway().set_cancel_at_period_end, subscription.provider_subscription_id, False
    )
    _apply(subscription, provider)
    return ChangeResult(subscription.public_id, subscription.status, 0, clock.now())


def _update_payment_method(subscription: Subscription, *, payment_method_id, **_):
    """Make a new card the default (and retry a past-due invoice with it)."""
    user = db.session.get(User, subscription.user_id)
    provider = _call(
        get_gateway().update_payment_method,
        subscription.provider_subscription_id,
        user.billing_customer_id,
        payment_method_id,
    )
    _apply(subscription, provider)
    return ChangeResult(subscription.public_id, subscription.status, 0, clock.now())


def _invalid_change(message: str) -> ApiError:
    """Make the 409 for a plan change the rules do not allow."""
    return ApiError("INVALID_PLAN_CHANGE", message)


# --- the provider's answers ---------------------------------------------------------------------


def _call(method, *args):
    """Call the gateway, turning its failures into the contract's errors."""
    try:
        return method(*args)
    except GatewayError as error:
        db.session.rollback()
        raise _gateway_error(error) from None


def _gateway_error(error: GatewayError) -> ApiError:
    """Map a gateway failure to the contract's error."""
    if isinstance(error, PaymentDeclined):
        return field_error(
            "PAYMENT_FAILED",
            f"The payment was declined ({error.decline_code}).",
            "paymentMethodId",
            declineCode=error.decline_code,
        )
    if isinstance(error, UnknownPaymentMethod):
        return field_error(
            "VALIDATION_ERROR",
            "paymentMethodId: Unknown payment method.",
            "paymentMethodId",
            fields={"paymentMethodId": ["Unknown payment method."]},
        )
    if isinstance(error, GatewayUnavailable):
        return ApiError(
            "SERVICE_UNAVAILABLE", "The payment provider is unavailable; try again shortly."
        )
    return ApiError("INTERNAL_ERROR", "The payment provider returned an error.")


def _apply(subscription: Subscription, provider: ProviderSubscription) -> None:
    """Mirror the provider's state into our row (never the other way round)."""
    now = clock.now()
    subscription.provider_subscription_id = provider.id
    if provider.plan_id != subscription.plan_id and get_plan(provider.plan_id) is not None:
        subscription.plan_id = provider.plan_id
        db.session.flush()
        db.session.refresh(subscription, ["plan"])
    if provider.status == "CANCELED" and subscription.status != "CANCELED":
        subscription.canceled_at = now
    subscription.status = provider.status
    subscription.current_period_start = provider.current_period_start
    subscription.current_period_end = provider.current_period_end
    subscription.cancel_at_period_end = provider.cancel_at_period_end
    subscription.trial_end = provider.trial_end
    card = provider.payment_method
    if card is not None:
        subscription.payment_method_id = card.payment_method_id
        subscription.payment_method_type = card.type
        subscription.card_brand = card.brand
        subscription.card_last4 = card.last4
        subscription.card_exp_month = card.exp_month
        subscription.card_exp_year = card.exp_year
    subscription.client_secret = provider.client_secret
    subscription.next_action = provider.next_action
    subscription.updated_at = now


# --- webhooks and time --------------------------------------------------------------------------


def handle_webhook(payload: bytes, signature: str | None) -> bool:
    """Verify and apply a provider event once; return False for a repeated delivery.

    The event only says *which* subscription changed: its state is re-read from the provider,
    so events arriving out of order still leave the provider's latest state.
    """
    gateway = get_gateway()
    try:
        event = gateway.parse_event(payload, signature)
    except InvalidSignature:
        raise ApiError(
            "INVALID_SIGNATURE", "The webhook signature is missing or invalid."
        ) from None
    db.session.add(WebhookEvent(id=event.id, type=event.type, received_at=clock.now()))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    if event.subscription_id:
        subscription = db.session.scalar(
            sa.select(Subscription).where(
                Subscription.provider_subscription_id == event.subscription_id
            )
        )
        if subscription is not None:
            provider = _call(gateway.retrieve_subscription, event.subscription_id)
            _apply(subscription, provider)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # the same event committed by a concurrent delivery
        return False
    return True


def advance_due_subscriptions(limit: int = 500) -> int:
    """Renew or end every subscription whose period is over; return how many were advanced."""
    now = clock.now()
    due = db.session.scalars(
        sa.select(Subscription)
        .where(
            Subscription.status.in_(LIVE_STATUSES),
            Subscription.provider_subscription_id.is_not(None),
            sa.or_(
                Subscription.current_period_end <= now,
                sa.and_(
                    Subscription.status == "INCOMPLETE",
                    Subscription.created_at <= now - INCOMPLETE_EXPIRY,
                ),
            ),
        )
        .order_by(Subscription.current_period_end)
        .limit(limit)
    ).all()
    for subscription in due:
        refresh_if_due(subscription)
    _release_abandoned_placeholders()
    return len(due)


def _release_abandoned_placeholders() -> None:
    """Free the slot held by a create that died before reaching the provider (a crash)."""
    db.session.execute(
        sa.delete(Subscription).where(
            Subscription.status == "INCOMPLETE",
            Subscription.provider_subscription_id.is_(None),
            Subscription.created_at < clock.now() - PLACEHOLDER_TIMEOUT,
        )
    )
    db.session.commit()


# --- operators ----------------------------------------------------------------------------------


def assign_plan(user: User, plan_id: str) -> Subscription | None:
    """Put a user on a plan without billing (enterprise and comped accounts); FREE ends it."""
    plan = get_plan(plan_id)
    if plan is None:
        raise LookupError(f"no plan {plan_id}")
    current = user.current_subscription
    if current is not None and current.status in LIVE_STATUSES:
        if current.provider_subscription_id is not None:
            raise ValueError("the user has a paid subscription: cancel it before assigning a plan")
        current.status = "CANCELED"
        current.canceled_at = clock.now()
        db.session.flush()
    if plan.id == FREE_PLAN_ID:
        db.session.commit()
        return None
    now = clock.now()
    subscription = Subscription(
        public_id=new_public_id("sub"),
        user_id=user.id,
        plan_id=plan.id,
        status="ACTIVE",
        current_period_start=now,
        cancel_at_period_end=False,
        created_at=now,
        updated_at=now,
    )
    db.session.add(subscription)
    user.current_subscription = subscription
    db.session.commit()
    return subscription


def seed_plans(plans: list[dict], coupons: list[dict]) -> tuple[int, int]:
    """Create or update the plans and coupons; return (plans written, coupons written)."""
    for values in plans:
        plan = db.session.get(Plan, values["id"]) or Plan(id=values["id"])
        for key, value in values.items():
            setattr(plan, key, value)
        db.session.add(plan)
    for values in coupons:
        coupon = db.session.get(Coupon, values["code"]) or Coupon(code=values["code"])
        for key, value in values.items():
            setattr(coupon, key, value)
        db.session.add(coupon)
    db.session.commit()
    all_plans = db.session.scalars(sa.select(Plan).order_by(Plan.rank)).all()
    all_coupons = db.session.scalars(sa.select(Coupon)).all()
    _call(get_gateway().sync_catalogue, list(all_plans), list(all_coupons))
    return len(plans), len(coupons)
