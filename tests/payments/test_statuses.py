"""One map from Stripe's subscription statuses to the service's, used by both gateways."""

from __future__ import annotations

import typing

import pytest
import stripe

from smartcv_account.extensions import db
from smartcv_account.models import Plan
from smartcv_account.payments.base import GatewayError
from smartcv_account.payments.local import LocalGateway
from smartcv_account.payments.local.models import LocalSubscription
from smartcv_account.payments.statuses import SERVICE_STATUS, service_status
from smartcv_account.payments.stripe.translate import subscription_view

# The statuses the Stripe library declares for `Subscription.status` (a Literal, or any str).
STRIPE_STATUSES = typing.get_args(typing.get_args(stripe.Subscription.__annotations__["status"])[0])
SERVICE_STATUSES = {"ACTIVE", "TRIALING", "PAST_DUE", "INCOMPLETE", "CANCELED"}


def stripe_subscription(status: str) -> dict:
    """A Stripe subscription object (API 2025-02-24) in `status`, as the gateway reads it."""
    return {
        "id": "sub_1",
        "status": status,
        "customer": "cus_1",
        "current_period_start": 1735689600,
        "current_period_end": 1738368000,
        "items": {"data": [{"id": "si_1", "plan": {"id": "plan_premium_monthly"}}]},
    }


@pytest.fixture
def local_subscription(app, plans) -> tuple[LocalGateway, LocalSubscription]:
    """The local gateway and one of its paid subscriptions."""
    gateway = LocalGateway("whsec_test")
    customer = gateway.ensure_customer("user_1", "someone@example.com", None)
    card = gateway.attach_payment_method(customer, "pm_card_visa")
    plan = db.session.get(Plan, "plan_premium_monthly")
    provider = gateway.create_subscription(customer, plan, card, None, "key-1")
    return gateway, db.session.get(LocalSubscription, provider.id)


def test_stripe_declares_the_statuses_the_map_knows():
    assert set(STRIPE_STATUSES) == set(SERVICE_STATUS)


@pytest.mark.parametrize("status", STRIPE_STATUSES)
def test_every_stripe_status_is_a_service_status(status):
    assert service_status(status) in SERVICE_STATUSES


@pytest.mark.parametrize("status", STRIPE_STATUSES)
def test_the_stripe_gateway_shows_the_mapped_status(status):
    assert subscription_view(stripe_subscription(status)).status == service_status(status)


@pytest.mark.parametrize("status", STRIPE_STATUSES)
def test_the_local_gateway_shows_the_mapped_status(local_subscription, status):
    gateway, subscription = local_subscription
    subscription.status = status
    assert gateway.retrieve_subscription(subscription.id).status == service_status(status)


def test_an_unknown_status_is_a_gateway_error_in_both_gateways(local_subscription):
    with pytest.raises(GatewayError, match="unknown Stripe subscription status"):
        subscription_view(stripe_subscription("frozen"))
    gateway, subscription = local_subscription
    subscription.status = "frozen"
    with pytest.raises(GatewayError, match="unknown Stripe subscription status"):
        gateway.retrieve_subscription(subscription.id)
