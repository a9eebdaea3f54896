"""Mirroring the provider: its answers and errors turned into our subscription rows.

Every path that hears from the payment provider (a create, a change, a webhook, the scheduled
renewals) goes through `apply_provider_state`, which copies the provider's subscription into
the row, records the transition and sends the notice it calls for.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ... import client, clock
from ...errors import ApiError, field_error
from ...extensions import db
from ...models import (
    LIVE_STATUSES,
    Subscription,
    User,
)
from ...payments import get_gateway
from ...payments.base import (
    GatewayError,
    GatewayUnavailable,
    PaymentDeclined,
    ProviderSubscription,
    UnknownPaymentMethod,
)
from ...principal import Principal, PrincipalSubscription
from ...rules.due import is_due
from .. import activity, notices
from ..locking import load_user
from ..plans import get_plan

log = logging.getLogger(__name__)

# A create's placeholder row older than this never reached the provider: its request died.
PLACEHOLDER_TIMEOUT = timedelta(minutes=10)


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


def call_gateway(method, *args):
    """Call the gateway, turning its failures into the contract's errors."""
    try:
        return method(*args)
    except GatewayError as error:
        db.session.rollback()
        raise gateway_error(error) from None


def gateway_error(error: GatewayError) -> ApiError:
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
    if provider.status in ("ACTIVE", "TRIALING", "PAST_DUE") and subscription.started_at is None:
        subscription.started_at = now  # it counts as the user's trial or paid subscription
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
    subscription.latest_payment_status = provider.latest_payment_status
    subscription.latest_payment_cents = provider.latest_payment_cents
    subscription.hosted_invoice_url = provider.hosted_invoice_url
    subscription.updated_at = now
    if provider.dispute_id is not None:
        dispute_opened(subscription, provider.dispute_id)


def dispute_opened(subscription: Subscription, dispute_id: str) -> None:
    """A payment was disputed (a chargeback): end the subscription at once, record it, log it.

    The user is back on FREE; the operators' log line names the subscription and the dispute.
    Once ended, another event about the same dispute changes nothing (and a dispute the
    merchant wins later changes nothing further).
    """
    if subscription.status not in LIVE_STATUSES or subscription.provider_subscription_id is None:
        return
    provider = call_gateway(
        get_gateway().cancel_now,
        subscription.provider_subscription_id,
        f"{subscription.public_id}:dispute:{dispute_id}",
    )
    apply_provider_state(subscription, provider)
    details = {"subscriptionId": subscription.public_id, "disputeId": dispute_id}
    activity.record(subscription.user_id, "payment_disputed", details, client.NOBODY)
    log.warning("payment disputed: subscription canceled", extra=details)


def _record_transition(subscription: Subscription, new_status: str) -> None:
    """Record the provider's verdicts: a payment that failed, a subscription that ended."""
    if subscription.id is None or new_status == subscription.status:
        return
    details = {"subscriptionId": subscription.public_id}
    if subscription.status == "TRIALING":
        outcome = {"ACTIVE": "paid", "PAST_DUE": "unpaid"}.get(new_status, "canceled")
        activity.record(
            subscription.user_id, "trial_ended", {**details, "outcome": outcome}, client.NOBODY
        )
    if new_status == "PAST_DUE":
        activity.record(subscription.user_id, "payment_failed", details, client.NOBODY)
    elif new_status == "CANCELED":
        activity.record(subscription.user_id, "subscription_canceled", details, client.NOBODY)


def _notify(subscription: Subscription, provider: ProviderSubscription) -> None:
    """Queue the billing notices for the state change about to be applied (see notices)."""
    waits_for_customer = provider.latest_payment_status == "requires_action"
    if provider.status == "PAST_DUE" and subscription.status != "PAST_DUE":
        if not waits_for_customer:  # else "confirm your payment", below
            notices.payment_failed(subscription)
    ended = provider.status == "CANCELED"
    if ended and subscription.status == "TRIALING" and provider.payment_method is None:
        notices.trial_canceled(subscription)  # no card at the trial's end
    elif ended and subscription.status in ("ACTIVE", "TRIALING", "PAST_DUE"):
        notices.subscription_canceled(subscription)
    if (provider.next_action is not None or waits_for_customer) and (
        subscription.next_action is None and subscription.latest_payment_status != "requires_action"
    ):
        notices.payment_needs_authentication(subscription)
