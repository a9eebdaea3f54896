"""Changing a subscription: upgrade, downgrade, cancel, reactivate, a new card, and previews."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ... import clock
from ...catalogue import FREE_PLAN_ID
from ...errors import ApiError, field_error
from ...extensions import db
from ...models import (
    LIVE_STATUSES,
    Plan,
    Subscription,
    User,
)
from ...payments import get_gateway
from ...payments.base import (
    ChangePreview,
    GatewayError,
    PaymentDeclined,
)
from ...principal import Principal
from ...rules.entitlement import status_at
from .. import activity
from ..locking import load_user, lock_user
from ..plans import get_plan
from .provider_state import apply_provider_state, call_gateway, gateway_error, live_subscription

ACTIONS = ("upgrade", "downgrade", "cancel", "reactivate", "update_payment_method", "end_trial")


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
        "end_trial": _end_trial,
    }[action]
    result = handler(
        subscription,
        action=action,
        plan_id=plan_id,
        proration_behavior=proration_behavior,
        payment_method_id=payment_method_id,
    )
    _record_change(subscription, action)
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


def _end_trial(subscription: Subscription, **_):
    """End a trial now and charge its first invoice (Stripe's `trial_end=now`).

    A decline changes nothing (402); a payment that needs authentication leaves the trial
    running with the change pending, as a plan change's does.
    """
    if subscription.status != "TRIALING":
        raise _invalid_change("There is no trial to end.")
    if subscription.pending_plan_id is not None:
        raise _invalid_change("A change is waiting for its payment; complete it first.")
    provider = call_gateway(
        get_gateway().end_trial,
        subscription.provider_subscription_id,
        _intent_key(subscription, "end_trial"),
    )
    apply_provider_state(subscription, provider)
    waiting = provider.pending_plan_id is not None and provider.requires_action
    charged = provider.latest_invoice_amount_cents if provider.status == "ACTIVE" else 0
    return ChangeResult(
        subscription.public_id,
        subscription.status,
        0,
        clock.now(),
        amount_due_now=charged or 0,
        requires_action=waiting,
        client_secret=provider.client_secret if waiting else None,
        next_action=provider.next_action if waiting else None,
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
            raise gateway_error(error) from None
        except GatewayError as error:
            db.session.rollback()
            raise gateway_error(error) from None
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
