"""Webhook events beyond "re-read this subscription": reconciling and refreshing the card.

- A subscription event for a subscription with no row here is reconciled through its customer:
  adopted when the customer's user has no live subscription, otherwise recorded in
  `unreconciled_subscriptions` for the operator and logged. Nothing is dropped silently.
- `customer.updated` and `payment_method.attached/detached/automatically_updated` re-read the
  customer's live subscription, so the card shown is the provider's current default.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ... import clock
from ...errors import ApiError
from ...extensions import db
from ...models import (
    LIVE_STATUSES,
    Subscription,
    UnreconciledSubscription,
    User,
)
from ...models import WebhookEvent as ProcessedEvent
from ...payments import get_gateway
from ...payments.base import (
    GatewayError,
    GatewayUnavailable,
    InvalidSignature,
    MalformedEvent,
    PaymentGateway,
    ProviderSubscription,
    WebhookEvent,
)
from ..identity import new_public_id
from ..locking import lock_user_where
from .provider_state import (
    PLACEHOLDER_TIMEOUT,
    apply_provider_state,
    call_gateway,
    dispute_opened,
)
from .trials import send_trial_notice

log = logging.getLogger(__name__)

PAYMENT_METHOD_EVENTS = (
    "customer.updated",
    "payment_method.attached",
    "payment_method.detached",
    "payment_method.automatically_updated",
)
PENDING_UPDATE_EXPIRED = "customer.subscription.pending_update_expired"
DISPUTE_CREATED = "charge.dispute.created"


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
    db.session.add(ProcessedEvent(id=event.id, type=event.type, received_at=clock.now()))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    if event.subscription_id:
        # Locked, its user's row first as by every write (services/locking.py): an account
        # deletion canceling this subscription meanwhile waits, or is waited for, so neither
        # writes over the other's provider state, and the two never deadlock.
        owner = db.session.scalar(
            sa.select(Subscription.user_id).where(
                Subscription.provider_subscription_id == event.subscription_id
            )
        )
        if owner is not None:
            lock_user_where(User.id == owner)
        subscription = db.session.scalar(
            sa.select(Subscription)
            .where(Subscription.provider_subscription_id == event.subscription_id)
            .with_for_update()
        )
        if subscription is not None:
            # A lapsed plan change: `advance` also voids the invoice Stripe leaves open.
            read = gateway.advance if event.type == PENDING_UPDATE_EXPIRED else None
            provider = call_gateway(read or gateway.retrieve_subscription, event.subscription_id)
            swapped_to = subscription.pending_plan_id
            apply_provider_state(subscription, provider)
            _clear_cancel_after_swap(gateway, subscription, provider, swapped_to)
            if event.type == "customer.subscription.trial_will_end":
                send_trial_notice(subscription)
            if event.type == DISPUTE_CREATED:
                dispute_opened(subscription, str(event.payload["data"]["object"].get("id")))
        else:
            reconcile_unknown_subscription(gateway, event)
    if event.type in PAYMENT_METHOD_EVENTS:
        refresh_payment_method(gateway, event)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # the same event committed by a concurrent delivery
        return False
    return True


def _clear_cancel_after_swap(
    gateway: PaymentGateway,
    subscription: Subscription,
    provider: ProviderSubscription,
    swapped_to: str | None,
) -> None:
    """A plan change applies and clears a pending cancel; one paid later (3-D Secure) too.

    `cancel_at_period_end` is not a pending-update parameter, so Stripe keeps it when the
    swap's invoice is paid: it is withdrawn here, as the local gateway's swap does.
    """
    applied = swapped_to is not None and provider.pending_plan_id is None
    if applied and provider.plan_id == swapped_to and provider.cancel_at_period_end:
        kept = call_gateway(
            gateway.set_cancel_at_period_end,
            provider.id,
            False,
            f"{subscription.public_id}:swap-keeps:{swapped_to}:v{subscription.version}",
        )
        apply_provider_state(subscription, kept)


def reconcile_unknown_subscription(gateway: PaymentGateway, event: WebhookEvent) -> None:
    """Adopt or record a provider subscription that has no row here (flushes, never commits)."""

    try:
        provider = gateway.retrieve_subscription(event.subscription_id)
    except GatewayUnavailable:
        raise _retry_later() from None
    except GatewayError:
        _record(event, None, None, "provider_error", None)
        return
    user = _customer_user(gateway, provider.customer_id)
    if user is not None:
        user = lock_user_where(User.id == user.id)  # before the subscription, as every write
    if user is None:
        _record(event, provider, None, "unknown_customer", provider.customer_id)
        return
    live = db.session.scalar(
        sa.select(Subscription)
        .where(Subscription.user_id == user.id, Subscription.status.in_(LIVE_STATUSES))
        .with_for_update()
    )
    if live is not None and live.provider_subscription_id is None:
        if live.created_at > clock.now() - PLACEHOLDER_TIMEOUT:
            # A create is still running and will record this subscription itself; if it dies,
            # the provider's next delivery (after the placeholder is released) adopts it.
            raise _retry_later()
    if provider.status not in LIVE_STATUSES:
        _record(event, provider, user, "ended", provider.customer_id)
        return
    if live is not None:
        _record(event, provider, user, "user_has_live_subscription", provider.customer_id)
        return
    now = clock.now()
    subscription = Subscription(
        public_id=new_public_id("sub"),
        user_id=user.id,
        plan_id=provider.plan_id,
        status=provider.status,
        cancel_at_period_end=provider.cancel_at_period_end,
        created_at=now,
        updated_at=now,
    )
    db.session.add(subscription)
    apply_provider_state(subscription, provider)
    user.current_subscription = subscription
    user.billing_customer_id = user.billing_customer_id or provider.customer_id
    db.session.flush()
    log.warning(
        "adopted provider subscription %s for user %s from event %s",
        provider.id,
        user.public_id,
        event.id,
    )


def refresh_payment_method(gateway: PaymentGateway, event: WebhookEvent) -> None:
    """Re-read the subscription whose card a customer or payment-method event may change."""

    obj: dict[str, Any] = event.payload["data"]["object"]
    customer_id = obj.get("id") if event.type == "customer.updated" else obj.get("customer")
    conditions = [Subscription.payment_method_id == obj.get("id")]
    if customer_id is not None:
        conditions.append(
            Subscription.user_id.in_(
                sa.select(User.id).where(User.billing_customer_id == customer_id)
            )
        )
    subscriptions = db.session.scalars(
        sa.select(Subscription).where(
            Subscription.status.in_(LIVE_STATUSES),
            Subscription.provider_subscription_id.is_not(None),
            sa.or_(*conditions),
        )
    ).all()
    for subscription in subscriptions:
        provider = call_gateway(
            gateway.retrieve_subscription, subscription.provider_subscription_id
        )
        apply_provider_state(subscription, provider)
        if provider.payment_method is None:
            _forget_card(subscription)


def _forget_card(subscription: Subscription) -> None:
    """Show no card once the provider has none (the default was detached)."""
    subscription.payment_method_id = None
    subscription.payment_method_type = None
    subscription.card_brand = None
    subscription.card_last4 = None
    subscription.card_exp_month = None
    subscription.card_exp_year = None


def _customer_user(gateway: PaymentGateway, customer_id: str) -> User | None:
    """Return the user behind a provider customer: by our link, else the customer's metadata."""
    user = db.session.scalar(sa.select(User).where(User.billing_customer_id == customer_id))
    if user is not None:
        return user
    try:
        public_id = gateway.customer_user_id(customer_id)
    except GatewayUnavailable:
        raise _retry_later() from None
    except GatewayError:
        return None
    if public_id is None:
        return None
    return db.session.scalar(sa.select(User).where(User.public_id == public_id))


def _record(
    event: WebhookEvent,
    provider: ProviderSubscription | None,
    user: User | None,
    reason: str,
    customer_id: str | None,
) -> None:
    """Keep an unreconciled subscription for the operator, and say so in the log."""
    db.session.add(
        UnreconciledSubscription(
            provider_subscription_id=event.subscription_id,
            customer_id=customer_id,
            user_id=user.id if user is not None else None,
            status=provider.status if provider is not None else None,
            reason=reason,
            event_id=event.id,
            created_at=clock.now(),
        )
    )
    db.session.flush()
    log.warning(
        "provider subscription %s has no row here and was not adopted (%s); event %s",
        event.subscription_id,
        reason,
        event.id,
    )


def _retry_later() -> ApiError:
    """The 503 that makes the provider deliver the event again later (nothing is recorded)."""
    return ApiError(
        "SERVICE_UNAVAILABLE", "The event cannot be applied yet; deliver it again later."
    )
