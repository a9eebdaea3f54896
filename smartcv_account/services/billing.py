"""Subscriptions: create, change, cancel, renew, and keep in step with the payment provider.

Money moves only through the gateway (`payments/`); this module decides what may happen and
mirrors the provider's answer into our `subscriptions` table.

This module owns every transaction; gateways only add and flush rows (the local provider's
books live in the same session). The commit points:

- create: (1) the placeholder row is committed before any money moves: the one-live-subscription
  index lets one of several concurrent creates through; (2) after the provider answers, its
  answer (or, when it refused, the placeholder's removal together with what the provider kept:
  the customer, the attached card) is committed.
- every change (PUT): one transaction. It starts by locking the live subscription's row
  (`_lock`), re-reads it, calls the provider with an idempotency key derived from the intent
  and the row's version, mirrors the answer and commits. A refused payment rolls it all back,
  except where the contract keeps something (a new card whose payment of the open invoice was
  declined is kept: committed, then 402).
- webhooks and `advance`: one transaction per subscription brought up to date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import client, clock
from ..catalogue import FREE_PLAN_ID
from ..errors import ApiError, field_error
from ..extensions import db
from ..idempotency import commit_change
from ..models import (
    LIVE_STATUSES,
    Coupon,
    CouponRedemption,
    Plan,
    Subscription,
    User,
    WebhookEvent,
)
from ..payments import get_gateway
from ..payments.base import (
    ChangePreview,
    GatewayError,
    GatewayUnavailable,
    InvalidSignature,
    InvoiceSummary,
    MalformedEvent,
    PaymentDeclined,
    ProviderSubscription,
    UnknownPaymentMethod,
)
from ..principal import Principal, PrincipalSubscription
from ..rules.due import due_sql, is_due
from ..rules.entitlement import status_at
from . import activity, notices, webhooks
from .identity import new_public_id
from .locking import load_user, lock_user
from .plans import PlanSnapshot, plan_for_display

ACTIONS = ("upgrade", "downgrade", "cancel", "reactivate", "update_payment_method")
# A create's placeholder row older than this never reached the provider: its request died.
PLACEHOLDER_TIMEOUT = timedelta(minutes=10)


# Coupons that only a customer's first paid subscription may use.
FIRST_SUBSCRIPTION_COUPONS = ("WELCOME20",)


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What PUT /api/account/subscription reports."""

    subscription_id: str
    status: str
    proration_amount: int
    effective_date: datetime | None
    amount_due_now: int = 0
    requires_action: bool = False
    client_secret: str | None = None
    next_action: dict | None = None


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
    pending_change: dict | None = None


# --- reading ------------------------------------------------------------------------------------


def subscription_view(user: Principal) -> SubscriptionView:
    """Assemble the user's subscription, plan, usage, card and next bill.

    The plan comes from the in-process snapshot (services/plans.py): showing it costs no query.
    Nothing here calls the provider or writes: an ended period shows as ended (`status_at`).
    """
    from .usage import current_usage

    subscription = user.current_subscription
    if subscription is None or status_at(subscription, clock.now()) not in LIVE_STATUSES:
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
        amount = subscription.next_invoice_amount_cents
        next_billing = {
            "date": subscription.current_period_end,
            # What the provider's upcoming invoice charges; the list price until it has said.
            "amount_cents": plan.price_cents if amount is None else amount,
            "currency": plan.currency,
        }
    pending_change = None
    if subscription.pending_plan_id is not None:
        pending_change = {
            "plan_id": subscription.pending_plan_id,
            "expires_at": subscription.pending_expires_at,
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
        pending_change=pending_change,
    )


def get_plan(plan_id: str) -> Plan | None:
    """Return a plan by id."""
    return db.session.get(Plan, plan_id)


def live_subscription(user: User | Principal) -> Subscription | PrincipalSubscription | None:
    """Return the user's subscription unless it has ended, after bringing it up to now.

    For writers (create, change) only: it may call the provider. Reads use `status_at`.
    """
    subscription = user.current_subscription
    if subscription is None or subscription.status not in LIVE_STATUSES:
        return None
    if is_due(subscription, clock.now()):
        subscription = load_user(user.id).current_subscription
        refresh_if_due(subscription)
    return subscription if subscription.status in LIVE_STATUSES else None


def refresh_if_due(subscription: Subscription) -> Subscription:
    """Run renewals, retries or a pending cancel whose time has come (cron and writers only)."""
    if is_due(subscription, clock.now()):
        provider = call_gateway(get_gateway().advance, subscription.provider_subscription_id)
        apply_provider_state(subscription, provider)
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
        raise _gateway_error(error) from None
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
    commit_change()
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


# --- changing -----------------------------------------------------------------------------------


def change_subscription(
    principal: Principal,
    action: str,
    plan_id: str | None = None,
    proration_behavior: str = "create_prorations",
    payment_method_id: str | None = None,
) -> ChangeResult:
    """Apply one of the PUT actions to the user's paid subscription, one change at a time."""
    subscription = _locked_paid_subscription(principal)
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
    _record_change(subscription, action)
    commit_change()
    return result


def _record_change(subscription: Subscription, action: str) -> None:
    """Record what the user did; an immediate cancel was recorded by `apply_provider_state`."""
    details = {"subscriptionId": subscription.public_id, "action": action}
    if action != "cancel":
        activity.record(
            subscription.user_id,
            "subscription_changed",
            {**details, "planId": subscription.plan_id},
        )
    elif subscription.status != "CANCELED":
        activity.record(
            subscription.user_id, "subscription_canceled", {**details, "atPeriodEnd": True}
        )


def preview_change(
    principal: Principal, action: str, plan_id: str, proration_behavior: str = "create_prorations"
) -> ChangePreview:
    """Return what the same upgrade or downgrade would bill, from the change's own computation.

    A read: it asks the provider for the preview but brings nothing up to now and writes nothing.
    """
    subscription = load_user(principal.id).current_subscription
    if subscription is not None and status_at(subscription, clock.now()) not in LIVE_STATUSES:
        subscription = None
    subscription = _paid_subscription(subscription)
    target = _target_plan(subscription, action, plan_id)
    return call_gateway(
        get_gateway().preview_change,
        subscription.provider_subscription_id,
        target,
        proration_behavior,
    )


def list_invoices(user: User) -> list[InvoiceSummary]:
    """Return the user's invoices at the provider, newest first (none before a first create)."""
    customer_id = load_user(user.id).billing_customer_id
    if customer_id is None:
        return []
    return call_gateway(get_gateway().list_invoices, customer_id)


def _paid_subscription(subscription) -> Subscription:
    """Refuse a missing subscription (404) and an operator-assigned one (409)."""
    if subscription is None:
        raise ApiError("SUBSCRIPTION_NOT_FOUND", "You have no subscription to change.")
    if subscription.provider_subscription_id is None:
        raise ApiError(
            "INVALID_PLAN_CHANGE",
            "This plan was arranged with SmartCV; contact support to change it.",
        )
    return subscription


def _locked_paid_subscription(principal: Principal) -> Subscription:
    """Return the user's live paid subscription, locked for this transaction and re-read.

    The user's row is locked first, as by every write (services/locking.py), so a change and
    a deletion of one account are applied one after the other and never deadlock.
    """
    user = lock_user(principal)
    subscription = live_subscription(user)
    if not db.session().in_transaction():
        # Bringing a due period up to now committed (and so let the user's lock go).
        user = lock_user(principal)
    subscription = _paid_subscription(subscription)
    locked = _lock(subscription.id)
    if locked.status not in LIVE_STATUSES:  # it ended while we waited for the lock
        raise ApiError("SUBSCRIPTION_NOT_FOUND", "You have no subscription to change.")
    return locked


def _lock(subscription_id: int) -> Subscription:
    """Lock a subscription's row until the transaction ends, bump its version, and re-read it.

    PostgreSQL: `SELECT … FOR UPDATE`, a row lock. SQLite has no row locks: the version bump
    is the transaction's first write, which takes SQLite's single write lock (waiting, up to
    the busy timeout, for the holder's commit) before the row is read; reads before it ran
    outside any transaction, so no stale snapshot is kept. Either way a concurrent change waits
    here and then decides on the state the first one committed.
    """
    bump = (
        sa.update(Subscription)
        .where(Subscription.id == subscription_id)
        .values(version=Subscription.version + 1)
    )
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    if sqlite:
        db.session.execute(bump)
    locked = db.session.scalars(
        sa.select(Subscription)
        .where(Subscription.id == subscription_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if not sqlite:
        # Read under the row lock, so the increment is exact; written with the change's flush.
        locked.version += 1
    return locked


def _intent_key(subscription: Subscription, action: str, target: str = "") -> str:
    """Return the idempotency key of one intended change: the same intent on the same state
    (the row's version, bumped under the lock) is the same request to the provider."""
    return f"{subscription.public_id}:{action}:{target}:v{subscription.version}"


def _target_plan(subscription, action: str, plan_id: str | None) -> Plan:
    """Return the plan an upgrade or downgrade moves to, or raise why it may not."""
    target = get_plan(plan_id)
    if target is None or (not target.self_serve and target.id != FREE_PLAN_ID):
        raise field_error(
            "PLAN_NOT_FOUND", f"There is no self-serve plan with id {plan_id!r}.", "planId"
        )
    current = get_plan(subscription.plan_id)
    if target.id == FREE_PLAN_ID:
        raise _invalid_change("To move to the free plan, cancel the subscription.")
    if target.id == current.id:
        raise _invalid_change(f"You are already on {current.name}.")
    if (action == "upgrade") != (target.rank > current.rank):
        word = "higher" if action == "upgrade" else "lower"
        raise _invalid_change(f"{target.name} is not a {word} plan than {current.name}.")
    if subscription.status not in ("ACTIVE", "TRIALING"):
        raise _invalid_change("Settle the outstanding payment before changing plans.")
    if subscription.pending_plan_id is not None:
        raise _invalid_change("A plan change is waiting for its payment; complete it first.")
    return target


def _change_plan(subscription: Subscription, *, action, plan_id, proration_behavior, **_):
    """Upgrade or downgrade now, prorating as asked (pending while the payment needs action)."""
    target = _target_plan(subscription, action, plan_id)
    change = call_gateway(
        get_gateway().change_plan,
        subscription.provider_subscription_id,
        target,
        proration_behavior,
        _intent_key(subscription, action, f"{target.id}:{proration_behavior}"),
    )
    apply_provider_state(subscription, change.subscription)
    provider = change.subscription
    return ChangeResult(
        subscription.public_id,
        subscription.status,
        change.proration_cents,
        clock.now(),
        amount_due_now=change.amount_due_cents,
        requires_action=provider.pending_plan_id is not None and provider.requires_action,
        client_secret=provider.client_secret if provider.pending_plan_id else None,
        next_action=provider.next_action if provider.pending_plan_id else None,
    )


def _cancel(subscription: Subscription, **_):
    """Cancel at period end (an unpaid INCOMPLETE one at once, voiding its invoice)."""
    gateway = get_gateway()
    if subscription.status == "INCOMPLETE":
        # Nothing was paid: abandon it now rather than keep an unpaid plan to period end.
        provider = call_gateway(
            gateway.cancel_now,
            subscription.provider_subscription_id,
            _intent_key(subscription, "cancel_now"),
        )
        apply_provider_state(subscription, provider)
        return ChangeResult(subscription.public_id, subscription.status, 0, clock.now())
    if not subscription.cancel_at_period_end:
        provider = call_gateway(
            gateway.set_cancel_at_period_end,
            subscription.provider_subscription_id,
            True,
            _intent_key(subscription, "cancel"),
        )
        apply_provider_state(subscription, provider)
    return ChangeResult(
        subscription.public_id, subscription.status, 0, subscription.current_period_end
    )


def _reactivate(subscription: Subscription, **_):
    """Withdraw a pending cancel."""
    if not subscription.cancel_at_period_end:
        raise _invalid_change("There is no pending cancellation to undo.")
    provider = call_gateway(
        get_gateway().set_cancel_at_period_end,
        subscription.provider_subscription_id,
        False,
        _intent_key(subscription, "reactivate"),
    )
    apply_provider_state(subscription, provider)
    return ChangeResult(subscription.public_id, subscription.status, 0, clock.now())


def _update_payment_method(subscription: Subscription, *, payment_method_id, **_):
    """Make a new card the default; a PAST_DUE or INCOMPLETE subscription's open invoice is
    paid with it at once (402 when that fails, the new card kept)."""
    gateway = get_gateway()
    user = db.session.get(User, subscription.user_id)
    provider = call_gateway(
        gateway.update_payment_method,
        subscription.provider_subscription_id,
        user.billing_customer_id,
        payment_method_id,
        _intent_key(subscription, "card", payment_method_id),
    )
    apply_provider_state(subscription, provider)
    if subscription.status in ("PAST_DUE", "INCOMPLETE"):
        try:
            provider = gateway.pay_open_invoice(
                subscription.provider_subscription_id, _intent_key(subscription, "pay")
            )
        except PaymentDeclined as error:
            db.session.commit()  # the card stays the default, as the contract says
            raise _gateway_error(error) from None
        except GatewayError as error:
            db.session.rollback()
            raise _gateway_error(error) from None
        apply_provider_state(subscription, provider)
    return ChangeResult(
        subscription.public_id,
        subscription.status,
        0,
        clock.now(),
        requires_action=subscription.requires_action,
        client_secret=subscription.client_secret if subscription.requires_action else None,
        next_action=subscription.next_action,
    )


def cancel_immediately(subscription: Subscription) -> None:
    """End a subscription at the provider now (account deletion); GatewayError propagates."""
    if subscription.provider_subscription_id is None:
        # Arranged by an operator, never billed: nothing to tell the provider.
        subscription.status, subscription.canceled_at = "CANCELED", clock.now()
        return
    apply_provider_state(
        subscription, get_gateway().cancel_now(subscription.provider_subscription_id)
    )


def _invalid_change(message: str) -> ApiError:
    """Make the 409 for a plan change the rules do not allow."""
    return ApiError("INVALID_PLAN_CHANGE", message)


# --- the provider's answers ---------------------------------------------------------------------


def call_gateway(method, *args):
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


def apply_provider_state(subscription: Subscription, provider: ProviderSubscription) -> None:
    """Mirror the provider's state into our row (never the other way round)."""
    now = clock.now()
    subscription.provider_subscription_id = provider.id
    if provider.plan_id != subscription.plan_id and get_plan(provider.plan_id) is not None:
        subscription.plan_id = provider.plan_id
        db.session.flush()
        db.session.refresh(subscription, ["plan"])
    if provider.status == "CANCELED" and subscription.status != "CANCELED":
        subscription.canceled_at = now
    _record_transition(subscription, provider.status)
    _notify(subscription, provider)
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
    subscription.pending_plan_id = provider.pending_plan_id
    subscription.pending_expires_at = provider.pending_expires_at
    subscription.next_invoice_amount_cents = provider.next_invoice_amount_cents
    subscription.next_payment_attempt = provider.next_payment_attempt
    subscription.updated_at = now


def _record_transition(subscription: Subscription, new_status: str) -> None:
    """Record the provider's verdicts: a payment that failed, a subscription that ended."""
    if subscription.id is None or new_status == subscription.status:
        return
    details = {"subscriptionId": subscription.public_id}
    if new_status == "PAST_DUE":
        activity.record(subscription.user_id, "payment_failed", details, client.NOBODY)
    elif new_status == "CANCELED":
        activity.record(subscription.user_id, "subscription_canceled", details, client.NOBODY)


def _notify(subscription: Subscription, provider: ProviderSubscription) -> None:
    """Queue the billing notices for the state change about to be applied (see notices)."""
    if provider.status == "PAST_DUE" and subscription.status != "PAST_DUE":
        notices.payment_failed(subscription)
    if provider.status == "CANCELED" and subscription.status in ("ACTIVE", "TRIALING", "PAST_DUE"):
        notices.subscription_canceled(subscription)
    if provider.next_action is not None and subscription.next_action is None:
        notices.payment_needs_authentication(subscription)


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
    except MalformedEvent as error:
        raise ApiError("VALIDATION_ERROR", f"The event is not well formed: {error}.") from None
    db.session.add(WebhookEvent(id=event.id, type=event.type, received_at=clock.now()))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    if event.subscription_id:
        # Locked: an account deletion canceling this subscription meanwhile waits, or is
        # waited for, so neither writes over the other's provider state.
        subscription = db.session.scalar(
            sa.select(Subscription)
            .where(Subscription.provider_subscription_id == event.subscription_id)
            .with_for_update()
        )
        if subscription is not None:
            provider = call_gateway(gateway.retrieve_subscription, event.subscription_id)
            apply_provider_state(subscription, provider)
        else:
            webhooks.reconcile_unknown_subscription(gateway, event)
    if event.type in webhooks.PAYMENT_METHOD_EVENTS:
        webhooks.refresh_payment_method(gateway, event)
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
        .where(due_sql(now))
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
        if current.provider_subscription_id is None and current.plan_id == plan.id:
            return current  # already on it: assigning again changes nothing
        if current.provider_subscription_id is not None:
            raise ValueError(_paid_subscription_in_the_way(current))
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


def _paid_subscription_in_the_way(subscription: Subscription) -> str:
    """Explain to an operator why a paid subscription blocks assigning a plan, and what to do."""
    if subscription.cancel_at_period_end:
        return (
            f"the user's paid subscription {subscription.public_id} is already canceled and runs"
            f" until {clock.isoformat(subscription.current_period_end)}, which the customer paid"
            " for; assign the plan after that date (once `advance-subscriptions` has ended it)"
        )
    return (
        f"the user has a paid subscription ({subscription.public_id}, {subscription.status}):"
        " the customer cancels it (PUT /api/account/subscription, action cancel) and the plan"
        " is assigned once it has ended"
    )


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
    call_gateway(get_gateway().sync_catalogue, list(all_plans), list(all_coupons))
    return len(plans), len(coupons)
